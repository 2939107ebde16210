"""`profile --target adb://SERIAL --runner browser` and `--benchmark-binary`, without a phone.

No phone, emulator or Android image exists here (FACTS.md), and the qemu adbd of device_tests is
Linux, not Android (no `am`, no browser). So the adb client is replaced by
tests/support_fake_adb.py (a logged stand-in whose "device" is this host); what is real: the
allow-list server, the page, real headless Chromium (Pixel 7) opening the URL that `am start`
was given, the POST back and the scoring. The tests check the command sequence (adb reverse
before am start, the localhost URL, reverse removed at the end), a page that never posts, and
benchmark_model's output parsed in the tool's real format (tests/data)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from edgegan.devices.benchmark_model import benchmark_argv, parse_benchmark_model
from edgegan.errors import ResultsError
from support_fake_adb import write_fake_adb

DATA = Path(__file__).parent / "data"


def test_parse_benchmark_model_real_log():
    p = parse_benchmark_model((DATA / "benchmark_model_mobilenet_v1.log").read_text())
    assert p["runs"] == 50  # the timed runs' line, not the warm-up's count=1 nor the op profiler's Timings line
    lat = p["latency_ms"]
    assert lat["mean"] == pytest.approx(2950.34) and lat["min"] == pytest.approx(2727.568)
    assert lat["max"] == pytest.approx(3189.954) and lat["std"] == pytest.approx(109.798)
    assert lat["p50"] is None  # this version prints no median: left empty, not invented
    assert p["model_load_ms"] == pytest.approx(17.187) and p["first_inference_ms"] == pytest.approx(3512.391)
    assert p["memory_overall_mb"] == pytest.approx(46.0859)


def test_parse_benchmark_model_logcat_with_percentiles():
    p = parse_benchmark_model((DATA / "benchmark_model_logcat.log").read_text())
    assert p["runs"] == 25
    lat = p["latency_ms"]
    assert lat["mean"] == pytest.approx(145.528) and lat["p50"] == pytest.approx(141.253)
    assert lat["p95"] == pytest.approx(187.533) and lat["p5"] == pytest.approx(140.545)
    assert p["model_load_ms"] == pytest.approx(92.318) and p["memory_init_mb"] == pytest.approx(54.2852)


@pytest.mark.parametrize("text", ["", "Segmentation fault", "ERROR: Could not open '/x.tflite'.\nFailed to load model",
                                  "Inference timings in us: Init: x"])
def test_parse_benchmark_model_refuses_output_without_a_summary(text):
    with pytest.raises(ResultsError, match="Inference timings"):
        parse_benchmark_model(text)


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    log = tmp_path / "adb.log"
    monkeypatch.setenv("EDGEGAN_ADB", write_fake_adb(tmp_path / "adb", log))
    yield log
    for line in log.read_text().splitlines() if log.is_file() else []:
        entry = json.loads(line)
        if entry[0] == "#browser-pid":  # the "phone browser" processes this test started
            try:
                os.kill(entry[1], signal.SIGTERM)
            except ProcessLookupError:
                pass


def calls(log: Path) -> list:
    return [json.loads(x) for x in log.read_text().splitlines()]


def test_adb_runner_browser_command_sequence(tiny_bundle, fake_adb, tmp_path):
    from test_browser_runner import need_chromium, web_modules_or_skip

    need_chromium()
    web_modules_or_skip()
    from edgegan.devices.profile import ProfileConfig, run_profile
    from edgegan.devices.transport import TargetOptions

    cfg = ProfileConfig(bundle=str(tiny_bundle[0]), target="adb://FAKE01", runner="browser", formats=["onnx"],
                        runs=3, warmup=1, timeout_s=120, out=str(tmp_path / "out"),
                        target_options=TargetOptions(retries=0))
    out, doc = run_profile(cfg)
    row = doc["results"][0]
    assert row["status"] == "ok" and row["runtime"] == "onnxruntime-web", row.get("reason")
    assert "Android" in row["browser"]["user_agent"] and (out / "onnx" / "samples.npy").is_file()
    assert doc["device"]["emulator"] is None  # a phone run: the page ran on the device
    seq = [c for c in calls(fake_adb) if c[0] != "#browser-pid"]
    reverse = [i for i, c in enumerate(seq) if c[2:3] == ["reverse"] and c[3] != "--remove"]
    start = [i for i, c in enumerate(seq) if c[2] == "shell" and c[3].startswith("am start")]
    remove = [i for i, c in enumerate(seq) if c[2:4] == ["reverse", "--remove"]]
    assert len(reverse) == len(start) == len(remove) == 1 and reverse[0] < start[0] < remove[0]
    port = seq[reverse[0]][3].split(":")[1]
    assert seq[reverse[0]][3:] == [f"tcp:{port}", f"tcp:{port}"] and seq[remove[0]][4] == f"tcp:{port}"
    assert f"-d http://localhost:{port}/run/" in seq[start[0]][3] and "android.intent.action.VIEW" in seq[start[0]][3]
    assert all(c[:2] == ["-s", "FAKE01"] for c in seq)


def test_adb_page_that_never_posts_is_a_clear_failed_row(tiny_bundle, fake_adb, tmp_path, monkeypatch):
    web_modules = pytest.importorskip("edgegan.web.server")
    try:
        web_modules.node_modules()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    monkeypatch.setenv("FAKE_ADB_NO_BROWSER", "1")
    from edgegan.devices.profile import ProfileConfig, run_profile
    from edgegan.devices.transport import TargetOptions

    cfg = ProfileConfig(bundle=str(tiny_bundle[0]), target="adb://FAKE01", runner="browser", formats=["onnx"],
                        runs=3, warmup=1, timeout_s=2, out=str(tmp_path / "out"), target_options=TargetOptions(retries=0))
    _, doc = run_profile(cfg)
    row = doc["results"][0]
    assert row["status"] == "failed" and "posted no result within 2 s" in row["reason"]
    assert ["-s", "FAKE01", "reverse", "--remove"] == calls(fake_adb)[-1][:4]


def test_benchmark_binary_pushed_run_and_parsed(tiny_bundle, fake_adb, tmp_path):
    from edgegan.devices.profile import ProfileConfig, run_profile
    from edgegan.devices.transport import TargetOptions

    args_file = tmp_path / "args.txt"
    binary = tmp_path / "android_aarch64_benchmark_model"
    binary.write_text(f'#!/bin/sh\necho "$@" > {args_file}\ncat {DATA / "benchmark_model_logcat.log"}\n')
    cfg = ProfileConfig(bundle=str(tiny_bundle[0]), target="adb://FAKE01", benchmark_binary=str(binary),
                        formats=["tflite-fp32", "onnx"], runs=25, warmup=3, threads=4, out=str(tmp_path / "out"),
                        target_options=TargetOptions(retries=0, workdir=str(tmp_path / "device")))
    _, doc = run_profile(cfg)
    rows = {r["format"]: r for r in doc["results"]}
    tfl = rows["tflite-fp32"]
    assert tfl["status"] == "ok" and tfl["runs"] == 25 and tfl["latency_ms"]["p50"] == pytest.approx(141.253)
    assert tfl["runtime"] == "tflite-benchmark_model" and "not scored" in tfl["quality"]["note"]
    assert rows["onnx"]["status"] == "failed" and ".tflite artifacts only" in rows["onnx"]["reason"]
    ran = args_file.read_text().split()
    assert ran[1:] == benchmark_argv("", "X", 4, 3, 25)[2:]  # threads, warmup, runs, exact counts
    assert ran[0].startswith("--graph=") and ran[0].endswith(".tflite")
    seq = calls(fake_adb)
    assert any(c[2] == "push" and c[3] == str(binary) for c in seq)
    assert any(c[2] == "shell" and c[3].startswith("chmod 755 ") for c in seq)
