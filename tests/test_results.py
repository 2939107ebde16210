"""The results-folder contract: ProfileRun/ProfileRow round-trip and reject what a foreign
results.json could hold (wrong types, unknown statuses, path tricks in format names)."""
from __future__ import annotations

import json

import pytest

from edgegan.errors import ResultsError
from edgegan.results import ArtifactRef, ProfileRow, ProfileRun, ResultsLayout


def run_doc() -> ProfileRun:
    ok = ProfileRow(format="onnx", status="ok", device="board", target="ssh://pi@board", runtime="onnxruntime",
                    artifact=ArtifactRef(path="artifacts/model.onnx", sha256="a" * 64, bytes=10),
                    latency_ms={"p50": 1.5, "p90": 2.0}, runs=5, samples=ResultsLayout.samples_rel("onnx"),
                    quality={"psnr_db": 140.0})
    bad = ProfileRow(format="tflite-int8", reason="no litert runtime on the device")
    return ProfileRun(target="ssh://pi@board", run_id="r1", created="2026-11-30T00:00:00+00:00", complete=True,
                      bundle={"model": "dcgan-tiny"}, settings={"runs": 5}, results=[ok, bad])


def test_profile_run_round_trips_through_results_json(tmp_path):
    doc = run_doc()
    (tmp_path / "results.json").write_text(json.dumps(doc.to_dict()))
    back = ProfileRun.load(tmp_path)
    assert back == doc
    assert back.row("onnx").p50_ms == 1.5 and back.row("onnx").ok and not back.row("tflite-int8").ok
    with pytest.raises(ResultsError, match="no 'ort-int8' row"):
        back.row("ort-int8")


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["results"][0].update(status="great"), "status"),
    (lambda d: d["results"][0].update(runs="five"), "field .runs.: expected int or null"),
    (lambda d: d["results"][0].update(artifact={"path": 3}), "field .path.: expected str or null"),
    (lambda d: d.update(schema="other/9"), "schema"),
    (lambda d: d.pop("target"), "target"),
    (lambda d: d["results"][0].update(extra=1), "unknown field"),
])
def test_a_foreign_results_file_is_rejected_with_the_field_named(tmp_path, mutate, match):
    data = run_doc().to_dict()
    mutate(data)
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=match):
        ProfileRun.load(tmp_path)


def test_layout_never_leaves_the_results_folder(tmp_path):
    lay = ResultsLayout(tmp_path)
    assert lay.samples("ort-int8") == tmp_path / "ort-int8" / "samples.npy"
    for bad in ("..", "../x", "a/b", ""):
        with pytest.raises(ResultsError):
            lay.format_dir(bad)
    with pytest.raises(ResultsError, match="no results.json"):
        ProfileRun.load(tmp_path)


def test_rows_read_their_samples_from_the_folder(tmp_path):
    import numpy as np

    (tmp_path / "results.json").write_text(json.dumps(run_doc().to_dict()))
    (tmp_path / "onnx").mkdir()
    np.save(tmp_path / "onnx" / "samples.npy", np.ones((2, 1, 4, 4), np.float32))
    run = ProfileRun.load(tmp_path)
    assert run.row("onnx").load_samples().shape == (2, 1, 4, 4)
    with pytest.raises(ResultsError, match="no pulled samples"):
        run.row("tflite-int8").load_samples()
    np.save(tmp_path / "onnx" / "samples.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ResultsError, match="not a readable"):
        run.row("onnx").load_samples()
