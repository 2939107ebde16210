"""export -> setup -> profile -> compare on the target; the board's outputs vs this host's."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from devicelib import edgegan

pytestmark = pytest.mark.device

INT8_BIT_EXACT = ("tflite-int8",)  # deterministic integer kernels: the board must match x86 exactly


def test_device_info(target):
    proc = edgegan("device", "info", target.url, *target.args(), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["arch"] and info["cpu"] and info["cores"] >= 1 and info["python"]
    if target.emulated:
        assert info["arch"] == "aarch64" and "Cortex-A76" in info["cpu"]
        assert info["emulator"] and "qemu" in info["emulator"]


def test_setup_installs_runtimes_and_is_idempotent(target, setup_result):
    dev = setup_result["device"]
    assert setup_result["status"] in ("installed", "already set up")
    assert {"numpy", "onnxruntime", "ai-edge-litert"} <= set(dev["runtimes"])
    # ExecuTorch: the numpy-only runtime where the board's Python has wheels (>= 3.12), else
    # skipped with one line saying why (the bookworm board has 3.11; see test_executorch.py)
    if tuple(int(v) for v in dev["python"].split(".")[:2]) >= (3, 12):
        assert "executorch-numpy-runtime" in dev["runtimes"] and "executorch" not in setup_result["skipped"]
    else:
        assert "executorch-numpy-runtime" not in dev["runtimes"]
        assert "needs Python >= 3.12" in setup_result["skipped"]["executorch"]
    again = edgegan("device", "setup", target.url, *target.args(), "--json",
                    *(["--download-wheels"] if target.emulated else []))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "already set up"


def test_every_format_runs_with_measurements(target, profile_doc, bundle, setup_result):
    out, doc = profile_doc
    assert doc["complete"] is True
    manifest = json.loads((bundle / "bundle.json").read_text())
    expected = [a["format"] for a in manifest["artifacts"] if a["status"] != "failed"]
    rows = {r["format"]: r for r in doc["results"]}
    runtime_of = {a["format"]: a.get("runtime") for a in manifest["artifacts"]}
    for fmt in expected:
        r = rows[fmt]
        if runtime_of[fmt] in setup_result["skipped"]:  # setup said the board cannot have it: a clear failed row
            assert r["status"] == "failed" and r["reason"].startswith(f"no {runtime_of[fmt]} runtime on the device")
            continue
        assert r["status"] == "ok", f"{fmt}: {r['reason']}"
        lat = r["latency_ms"]
        assert all(lat[k] > 0 for k in ("p50", "p90", "p95", "p99", "mean", "trimmed_mean")) and lat["std"] >= 0
        assert lat["p50"] <= lat["p99"] and r["runs"] >= 1 and r["model_load_ms"] > 0 and r["first_inference_ms"] > 0
        if target.emulated:  # qemu's RSS includes the emulator: a range, never a measurement
            assert r["memory_method"] == "emulated-range" and r["peak_memory_mb"] is None
            lo, hi = r["peak_memory_range_mb"]
            assert 0 <= lo <= hi
        else:
            assert r["memory_method"] in ("VmHWM", "ru_maxrss") and r["peak_memory_mb"] > 0
        pw = r["power"]
        assert pw["provenance"] == "unavailable" or pw["provenance"].startswith("measured(")
        if pw["provenance"] == "unavailable":
            assert pw["avg_w"] is None and pw["energy_mj_per_inference"] is None and pw["reason"]
        assert set(r["thermal"]) >= {"start_c", "end_c"}
        q = r["quality"]
        assert q["samples"] == manifest["inputs"]["count"]
        assert q["exact"] or q["psnr_db"] > 25, f"{fmt}: {q['psnr_db']} dB vs float"
        assert "knn_precision" in q and "lsh_precision" in q, q.get("distribution_error")
    assert doc["device"]["emulator"] if target.emulated else True
    rows_csv = list(csv.DictReader((out / "results.csv").open()))
    assert {r["format"] for r in rows_csv} >= set(expected)
    md = (out / "report.md").read_text()
    assert "| format | status |" in md and "![samples](grid.png)" in md and (out / "grid.png").is_file()


def test_board_outputs_match_x86_for_the_same_artifact(target, profile_doc, bundle, record_property):
    """The int8 artifacts' outputs on the board vs this host's run of the same file."""
    from edgegan.bundle import Bundle
    from edgegan.metrics.paired import psnr_overall
    from edgegan.verify.host import run_artifact

    out, doc = profile_doc
    b = Bundle.load(bundle)
    report = {}
    for r in doc["results"]:
        if r["status"] != "ok":
            continue
        rec = b.artifact(r["format"])
        host = run_artifact(b.artifact_path(rec), rec.format, rec.io, b.inputs(), threads=1)
        dev = np.load(out / r["samples"])
        diff = np.abs(host.astype(np.float64) - dev)
        report[r["format"]] = {"exact": bool(np.array_equal(host, dev)), "max_abs_diff": float(diff.max()),
                               "psnr_db_vs_host": psnr_overall(dev, host)}
        assert r["quality"]["vs_host"]["exact"] == report[r["format"]]["exact"]
    record_property("board_vs_x86", json.dumps(report))
    print("\nboard vs x86 (same artifact, same inputs):")
    for fmt, v in report.items():
        if v["exact"]:
            print(f"  {fmt:<15} bit-exact")
        else:
            print(f"  {fmt:<15} max |diff| {v['max_abs_diff']:.3g}, {v['psnr_db_vs_host']:.1f} dB")
    for fmt in INT8_BIT_EXACT:
        if fmt in report:
            assert report[fmt]["exact"], f"{fmt} differs from x86 on the board: {report[fmt]}"
    for fmt, v in report.items():  # everything else: close, and the difference is reported above
        assert v["exact"] or v["psnr_db_vs_host"] > 40, f"{fmt}: board vs x86 {v}"


def test_profile_local_for_comparison(bundle, tmp_path):
    """The same bundle on this host through the same CLI (the x86 side of the comparison)."""
    proc = edgegan("profile", str(bundle), "--target", "local", "--runs", "10", "--warmup", "2", "--out",
                   str(tmp_path / "local"), "--json", "--no-compare")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert all(r["status"] == "ok" and r["memory_method"] in ("VmHWM", "ru_maxrss") for r in doc["results"])
