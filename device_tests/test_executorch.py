""".pte on a board with Python >= 3.12: setup installs the torch-free executorch-numpy-runtime,
profile runs both ExecuTorch formats there, and the board's outputs are compared with this
host's full executorch runtime for the same file (bit-identical, or the difference reported).

On the emulated board this uses a second, Debian 13 (trixie, python3.13) rootfs, built and
cached only when this file runs (cold ~40 s, warm seconds); the default board is bookworm
(Python 3.11), where ExecuTorch has no numpy-only runtime (test_flow checks that message).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from devicelib import board_target, edgegan

pytestmark = pytest.mark.device
pytest.importorskip("executorch.exir", reason="exporting .pte needs the executorch extra on the host")

FORMATS = ("executorch-fp32", "executorch-int8")
# XNNPACK's int8 kernels: bit-identical aarch64 (emulated trixie board, executorch-numpy-runtime)
# vs x86 (host executorch), measured with the model lowered as exported and again with the
# default delegation rewrite (InstanceNorm / reflect pad in XNNPACK, the norm kept float there):
# resnet-tiny, 8 inputs, 0 of 38400 elements differ. fp32 differs by summation order only
# (measured 1.5e-6 max, 36101 of 38400 elements); FP32_TOLERANCE leaves headroom for that.
INT8_BIT_EXACT = ("executorch-int8",)
FP32_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def pte_target(request):
    yield from board_target(request, suite="trixie")


@pytest.fixture(scope="module")
def pte_setup(pte_target):
    extra = ["--download-wheels"] if pte_target.emulated else []
    proc = edgegan("device", "setup", pte_target.url, *pte_target.args(), "--runtimes", "executorch", *extra, "--json")
    if proc.returncode != 0 and "needs Python >= 3.12" in proc.stderr and not pte_target.emulated:
        pytest.skip(f"this board cannot run .pte without torch: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, f"device setup failed: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def pte_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pte-bundle") / "resnet-tiny"
    proc = edgegan("export", "resnet-tiny", "--formats", ",".join(FORMATS), "--inputs", "8", "--calibration", "16",
                   "--out", str(out), timeout=1200)
    assert proc.returncode == 0, f"export failed: {proc.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def pte_profile(pte_target, pte_setup, pte_bundle, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pte-profile")
    proc = edgegan("profile", str(pte_bundle), "--target", pte_target.url, *pte_target.args(), "--runs", "5",
                   "--warmup", "1", "--no-compare", "--per-op", "--out", str(out), "--json")
    assert proc.returncode in (0, 1), f"profile crashed: {proc.stderr[-2000:]}"
    return out, json.loads(proc.stdout)


def test_setup_installs_the_numpy_only_runtime(pte_target, pte_setup):
    dev = pte_setup["device"]
    if pte_target.emulated:
        assert dev["os"].startswith("Debian GNU/Linux 13") and dev["python"].startswith("3.13")
    assert "executorch-numpy-runtime" in dev["runtimes"] and "torch" not in dev["runtimes"]
    assert pte_setup["skipped"] == {}


def test_pte_formats_run_on_the_board_like_on_this_host(pte_profile, pte_bundle, record_property):
    from edgegan.bundle import Bundle
    from edgegan.verify.host import run_artifact

    out, doc = pte_profile
    rows = {r["format"]: r for r in doc["results"]}
    b = Bundle.load(pte_bundle)
    for fmt in FORMATS:  # the defaults are what is compared: the delegation rewrite applied
        assert b.artifact(fmt).rewrites, f"{fmt} was exported without the delegation rewrite"
    report = {}
    for fmt in FORMATS:
        r = rows[fmt]
        assert r["status"] == "ok", f"{fmt}: {r['reason']}"
        assert r["runtime"] == "executorch" and r["implementation"] == "executorch-numpy-runtime"
        assert r["latency_ms"]["p50"] > 0 and r["model_load_ms"] > 0
        rec = b.artifact(fmt)
        host = run_artifact(b.artifact_path(rec), rec.format, rec.io, b.inputs(), threads=1)
        dev = np.load(out / r["samples"])
        diff = np.abs(host.astype(np.float64) - dev)
        report[fmt] = {"exact": bool(np.array_equal(host, dev)), "max_abs_diff": float(diff.max()),
                       "differing": int((diff > 0).sum()), "elements": int(diff.size)}
        assert r["quality"]["vs_host"]["exact"] == report[fmt]["exact"]
    record_property("pte_board_vs_x86", json.dumps(report))
    print("\n.pte on the board (executorch-numpy-runtime) vs this host (executorch):")
    for fmt, v in report.items():
        print(f"  {fmt:<16} " + ("bit-exact" if v["exact"] else
                                 f"max |diff| {v['max_abs_diff']:.3g} ({v['differing']} of {v['elements']} elements)"))
    for fmt in INT8_BIT_EXACT:
        assert report[fmt]["exact"], f"{fmt} differs from x86 on the board: {report[fmt]}"
    assert report["executorch-fp32"]["max_abs_diff"] < FP32_TOLERANCE  # float: summation order may differ, not more


def test_per_op_rows_say_the_times_are_this_hosts(pte_profile):
    out, doc = pte_profile
    for fmt in FORMATS:
        info = next(r for r in doc["results"] if r["format"] == fmt)["per_op"]
        assert info["captured_on"] == "host" and "not the device's" in info["note"]
        assert (out / info["file"]).is_file() and info["top"][0]["total_ms"] > 0
