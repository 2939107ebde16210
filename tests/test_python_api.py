"""The Python API (edgegan.api) end to end: docs/python-api.md's example is executed as written
(an in-memory generator that is not in the zoo -> export -> local profile -> compare), then its
objects are checked against independent runs of torch and onnxruntime."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import edgegan
from edgegan.errors import ResultsError, BundleError, ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def doc_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 2, "docs/python-api.md lost its runnable example"
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The namespace left by running every python block of the doc in a fresh directory."""
    import os

    work = tmp_path_factory.mktemp("python-api")
    before = os.getcwd()
    os.chdir(work)
    try:
        ns: dict = {"__name__": "python_api_example"}
        exec(compile(doc_code(), str(DOC), "exec"), ns)  # noqa: S102 - our own documentation
    finally:
        os.chdir(before)
    ns["_work"] = work
    return ns


def test_doc_example_bundle_holds_the_formats_and_matches_torch(example):
    from edgegan.export.onnx import onnx_session

    bundle, generator = example["bundle"], example["generator"]
    assert isinstance(bundle, edgegan.Bundle)
    assert bundle.root == (example["_work"] / "bundles" / "tiny-generator").resolve()  # absolute
    assert [r.format for r in bundle.artifact_records()] == ["onnx", "ort-int8"]
    assert all(r.status == "ok" for r in bundle.artifact_records())
    assert bundle.manifest.input["shape"] == [16, 1, 1]
    assert bundle.manifest.input["inferred"].startswith("first layer ConvTranspose2d(16, ...)")
    assert generator.training, "export must not switch the caller's module to eval mode"
    inputs = bundle.inputs()
    assert inputs.shape == (64, 16, 1, 1)
    sess = onnx_session(bundle.artifact_path(bundle.artifact("onnx")), threads=1)
    ort_out = sess.run(None, {sess.get_inputs()[0].name: inputs})[0]
    ref = generator.eval()
    try:
        with torch.no_grad():
            torch_out = ref(torch.from_numpy(inputs)).numpy()
    finally:
        generator.train()
    assert ort_out.shape == torch_out.shape == (64, 1, 16, 16)
    np.testing.assert_allclose(ort_out, torch_out, atol=1e-4, rtol=0)
    text = repr(bundle)
    assert "ort-int8" in text and "(inferred)" in text and max(map(len, text.splitlines())) <= 100
    assert json.loads(bundle.to_json())["input"]["shape"] == [16, 1, 1]


def test_doc_example_profile_rows_and_comparison(example):
    bundle, results, float_vs_int8 = example["bundle"], example["results"], example["float_vs_int8"]
    assert isinstance(results, edgegan.ProfileResults) and results.complete
    assert results.formats == ["onnx", "ort-int8"]
    for row in results:
        assert row.status == "ok", row.reason
        assert row.p50_ms > 0 and row.latency_ms["p99"] >= row.p50_ms and row.peak_memory_mb > 0
        assert row.load_samples().shape == (64, 1, 16, 16)
    # the pulled int8 samples are the ones on disk in the results folder
    on_disk = np.load(example["_work"] / "results" / "tiny-generator" / "ort-int8" / "samples.npy")
    np.testing.assert_array_equal(results.samples("ort-int8"), on_disk)

    float_vs_fp32 = edgegan.compare(bundle, results["onnx"])
    assert isinstance(float_vs_int8, edgegan.Comparison) and float_vs_int8.paired is not None
    int8_psnr, fp32_psnr = float_vs_int8.psnr_db, float_vs_fp32.psnr_db
    assert math.isfinite(int8_psnr) and 30 < int8_psnr < fp32_psnr
    # independent PSNR (peak-to-peak 2) of the same arrays
    a, b = bundle.reference().astype(np.float64), results.samples("ort-int8").astype(np.float64)
    assert int8_psnr == pytest.approx(10 * math.log10(4.0 / np.mean((a - b) ** 2)), abs=1e-6)
    assert 0 <= float_vs_int8["knn_precision"] <= 1 and float_vs_int8["ssim"] <= 1
    for obj in (results, float_vs_int8):
        lines = repr(obj).splitlines()
        assert max(map(len, lines)) <= 100
    assert "ort-int8" in repr(results) and "PSNR dB (paired)" in repr(float_vs_int8)
    assert json.loads(results.to_json())["results"][1]["format"] == "ort-int8"
    assert json.loads(float_vs_int8.to_json())["quality"]["psnr_db"] == pytest.approx(int8_psnr)


def test_doc_example_compression_snippet(example):
    small, generator = example["small"], example["generator"]
    assert [r["method"] for r in small.compression] == ["clip", "quant"]
    w = small.module.net[6].weight.detach()  # ConvTranspose2d(16, 1): one output channel, one scale
    assert len(torch.unique(w)) <= 2 ** 4  # 4-bit: at most 16 levels
    assert len(torch.unique(generator.net[6].weight.detach())) > 2 ** 4, "the caller's module is left alone"
    manifest = json.loads((example["_work"] / "bundles" / "tiny-q4" / "bundle.json").read_text())
    assert [r["method"] for r in manifest["compression"]] == ["clip", "quant"]


def test_compare_accepts_arrays_paths_and_results(example, tmp_path):
    bundle, results = example["bundle"], example["results"]
    ref = bundle.reference()
    np.save(tmp_path / "ref.npy", ref)
    c = edgegan.compare(tmp_path / "ref.npy", ref.copy(), paired=True, features="pixels")
    assert c.psnr_db == math.inf and c.to_dict()["quality"]["psnr_db"] is None
    with pytest.raises(ConfigError, match="format="):
        edgegan.compare(bundle, results)
    by_format = edgegan.compare(bundle, results, format="ort-int8", features="pixels")
    assert by_format.psnr_db == pytest.approx(example["float_vs_int8"].psnr_db)


def test_compress_looks_up_the_method_by_config_type():
    from edgegan.compress import PruneConfig

    module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 4, 4)))
    pruned = edgegan.compress(module, PruneConfig(sparsity=0.5))
    assert pruned.input_spec.shape == [8] and pruned.compression[0]["method"] == "prune"
    assert float((pruned.module[0].weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
    assert float((module[0].weight == 0).float().mean()) == 0.0
    with pytest.raises(ConfigError, match="not a compression method config; pass one of: .*PruneConfig"):
        edgegan.compress(module, {"sparsity": 0.5})
    with pytest.raises(ConfigError, match="say how to compress"):
        edgegan.compress(module)


def test_load_model_names_and_errors():
    m = edgegan.load_model("dcgan-tiny")
    assert m.family == "dcgan" and edgegan.load_model(m) is m
    user = edgegan.load_model("support_models:erf_generator", input_shape=(8, 1, 1))
    assert user.input_spec.shape == [8, 1, 1] and user.input_spec.inferred is None
    with pytest.raises(ConfigError, match="input_kind= needs input_shape="):
        edgegan.load_model("support_models:erf_generator", input_kind="image")
    with pytest.raises(ConfigError, match="unknown field"):
        edgegan.export("dcgan-tiny", no_such_option=1)


def test_reprs_fit_100_columns_with_long_values(example):
    doc = {"target": "ssh://" + "h" * 150, "complete": False, "bundle": {"model": "m" * 120}, "run_id": "r",
           "created": "2026-11-30T00:00:00+00:00", "settings": {},
           "device": {"arch": "aarch64", "cpu": "c" * 200},
           "results": [{"format": "tflite-int8", "status": "failed", "reason": "no runtime: " + "r" * 300}]}
    res = edgegan.ProfileResults(Path("/" + "p" * 150), doc, example["bundle"])
    text = repr(res)
    assert max(map(len, text.splitlines())) <= 100
    assert "tflite-int8" in text and "failed" in text and "no runtime" in text
    assert res["tflite-int8"].p50_ms is None and not res["tflite-int8"].ok
    with pytest.raises(ResultsError, match="no pulled samples"):
        res["tflite-int8"].load_samples()
