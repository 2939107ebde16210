"""The sweep spec and its job graph (no Ray here): JSON/YAML round trip, content-hashed job
keys, the [ray] extra's pin, and `import edgegan` staying free of Ray."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edgegan.errors import ConfigError
from edgegan.sweep import SweepSpec, expand, load_spec, slot_resource

ROOT = Path(__file__).resolve().parents[1]

SPEC = {
    "name": "tiny",
    "models": [{"name": "dcgan-tiny"}],
    "pipelines": [{"name": "float"},
                  {"name": "q8", "steps": [{"method": "quant", "config": {"bits": 8}}], "labels": {"bits": 8}}],
    "formats": ["onnx", "ort-int8"],
    "targets": [{"url": "local"}, {"url": "ssh://pi@board-a", "name": "board-a"}],
    "runs": {"runs": 5, "warmup": 1},
    "metrics": ["psnr_db"],
}


def test_spec_round_trips_json_and_yaml(tmp_path):
    spec = SweepSpec.from_dict(SPEC)
    again = SweepSpec.from_json(json.dumps(spec.to_dict()))
    assert again == spec and again.to_dict() == spec.to_dict()
    assert spec.pipelines[1].steps[0].method == "quant" and spec.runs.runs == 5 and spec.export.n_inputs == 16
    yaml = pytest.importorskip("yaml")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SPEC))
    (tmp_path / "s.json").write_text(json.dumps(SPEC))
    assert load_spec(tmp_path / "s.yaml") == load_spec(tmp_path / "s.json") == spec


@pytest.mark.parametrize("change, message", [
    ({"formats": ["onnx", "tflite-int9"]}, "unknown format 'tflite-int9'"),
    ({"targets": [{"url": "http://x"}]}, "is not local, ssh://"),
    ({"pipelines": [{"name": "a"}, {"name": "a"}]}, "pipeline 'a' appears twice"),
    ({"pipelines": [{"name": "q", "steps": [{"method": "quantize"}]}]}, "quantize"),
    ({"models": []}, "lists no models"),
    ({"runs": {"runs": 0}}, "runs must be >= 1"),
    ({"colour": "red"}, "unknown field(s) colour"),
])
def test_bad_specs_are_config_errors_naming_the_problem(change, message):
    with pytest.raises(ConfigError, match=None) as err:
        SweepSpec.from_dict({**SPEC, **change})
    assert message in str(err.value)


def test_job_graph_and_content_keys(tmp_path):
    spec = SweepSpec.from_dict(SPEC)
    jobs = expand(spec)
    kinds = [j.kind for j in jobs]
    # per (model, pipeline): one export, then per target a profile and a compare
    assert kinds == ["export", "profile", "compare", "profile", "compare"] * 2
    keys = [j.key for j in jobs]
    assert len(set(keys)) == len(keys)
    by_key = {j.key: j for j in jobs}
    for j in jobs:
        assert all(keys.index(d) < keys.index(j.key) for d in j.deps)
        if j.kind != "export":
            assert by_key[j.deps[0]].kind == ("export" if j.kind == "profile" else "profile")
    assert keys == [j.key for j in expand(SweepSpec.from_dict(SPEC))]  # stable
    # more runs: same exports, new profiles (and so new compares)
    more = expand(SweepSpec.from_dict({**SPEC, "runs": {"runs": 6, "warmup": 1}}))
    assert [j.key for j in more if j.kind == "export"] == [j.key for j in jobs if j.kind == "export"]
    assert not {j.key for j in more if j.kind != "export"} & {j.key for j in jobs if j.kind != "export"}
    # a checkpoint's bytes are in the key: rewrite the file, get new jobs
    ckpt = tmp_path / "g.pt"
    ckpt.write_bytes(b"one")
    with_ckpt = {**SPEC, "models": [{"name": "g", "model": "dcgan-tiny", "checkpoint": str(ckpt)}]}
    k1 = expand(SweepSpec.from_dict(with_ckpt))[0].key
    ckpt.write_bytes(b"two")
    assert expand(SweepSpec.from_dict(with_ckpt))[0].key != k1
    # one slot resource per device, distinct per target
    assert len({slot_resource(t.label) for t in spec.targets}) == 2


def test_dry_run_prints_the_job_graph(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(SPEC))
    r = subprocess.run([sys.executable, "-m", "edgegan", "sweep", str(tmp_path / "s.json"), "--dry-run"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["jobs"]) == 10 and doc["spec"]["name"] == "tiny"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SPEC, "formats": ["nope"]}))
    r = subprocess.run([sys.executable, "-m", "edgegan", "sweep", str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown format 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_import_edgegan_and_the_sweep_package_do_not_import_ray():
    code = ("import sys, edgegan, edgegan.sweep, edgegan.cli.sweep; "
            "print([m for m in ('ray', 'torch', 'yaml') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_ray_extra_is_pinned_once_and_installed_by_make():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = [ln.split("#")[0].strip() for ln in (ROOT / "requirements/ray.txt").read_text().splitlines()]
    assert extras["ray"] == [p for p in pinned if p]
    assert any(p.startswith("ray==") for p in extras["ray"])
    assert "ray" not in extras["all"][0]
    assert "requirements/ray.txt" in (ROOT / "Makefile").read_text()
