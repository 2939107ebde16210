"""The Raspberry Pi demo on the target: `edgegan demo pi` deploys the trained dcgan-digits to the
board, the gallery service serves its page from the board, headless Chromium's screenshot of it
shows digits (the shipped digits classifier, against non-digit controls), then --stop leaves
no process and no pid file behind."""
from __future__ import annotations

import json
import os
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest

from devicelib import edgegan
from gallery_check import browser_missing, controls, digit_scores, looks_like_digits, screenshot_gallery

pytestmark = pytest.mark.device
GRID = 16


@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory) -> Path:
    """The shipped, trained dcgan-digits as ONNX only (~30 s): dcgan-tiny's random weights draw no digits."""
    out = tmp_path_factory.mktemp("demo") / "dcgan-digits"
    proc = edgegan("export", "dcgan-digits", "--formats", "onnx", "--inputs", "16", "--out", str(out), timeout=1200)
    assert proc.returncode == 0, f"export failed: {proc.stderr[-2000:]}"
    return out


def board_port(target) -> int:
    if not target.emulated:
        return 8080
    with socket.socket() as s:  # the emulated board shares this machine's network
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def board_processes(target) -> list[str]:
    """`ps` on the board: the gallery's command lines still running there."""
    from edgegan.devices.targets import open_target

    with open_target(target.url, target.options()) as t:
        res = t.run(["ps", "-eo", "stat=,args="], timeout=120).check("ps")
    return [ln for ln in res.stdout.splitlines() if "edgegan_gallery" in ln and not ln.lstrip().startswith("Z")
            and " stop --pidfile" not in ln]


def board_has(target, path: str) -> bool:
    from edgegan.devices.targets import open_target

    with open_target(target.url, target.options()) as t:
        return t.run(["test", "-e", path], timeout=60).exit_code == 0


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_pi_demo_serves_a_gallery_of_digits_and_stops_cleanly(target, setup_result, digits_bundle, tmp_path,
                                                                record_property):
    port = board_port(target)
    proc = edgegan("demo", "pi", str(digits_bundle), "--target", target.url, *target.args(), "--port", str(port),
                   "--grid", str(GRID), "--json", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    try:
        assert out["status"] == "running" and out["format"] == "onnx" and out["model"] == "dcgan-digits"
        url = out["url"]
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"edgegan live gallery" in r.read()
        shot = tmp_path / "demo-pi.png"
        tiles = screenshot_gallery(url, shot, GRID)
        page = digit_scores(tiles)
        ctrl = {name: digit_scores(x) for name, x in controls(tiles).items()}
        record_property("demo_pi_scores", json.dumps({"page": page, **{k: {kk: v[kk] for kk in ("confident", "classes",
                                                                                                  "distance")}
                                                                          for k, v in ctrl.items()}}))
        print(f"\ngallery screenshot {shot}: {page}\ncontrols: " +
              ", ".join(f"{k} {v['confident']:.2f}/{v['classes']}/{v['distance']:.2f}" for k, v in ctrl.items()))
        if os.environ.get("EDGEGAN_DEMO_SHOT"):  # how docs/img/demo-pi.png was taken
            shutil.copy(shot, os.environ["EDGEGAN_DEMO_SHOT"])
        assert looks_like_digits(page), page
        assert not any(looks_like_digits(v) for v in ctrl.values()), ctrl

        proc = edgegan("demo", "pi", "--status", "--target", target.url, *target.args(), "--json")
        assert proc.returncode == 0, proc.stderr
        st = json.loads(proc.stdout)
        assert st["status"] == "running" and st["pid"] == out["pid"]
        state = st["state"]
        assert state["inferences"] >= GRID and state["latency_ms"]["p50"] > 0 and state["runtime"] == "onnxruntime"
        if target.emulated:
            assert state["device"]["arch"] == "aarch64" and "qemu" in state["device"]["emulator"]
            assert state["power"]["provenance"] == "unavailable" and state["power"]["reason"]
        assert board_processes(target), "the gallery service is not visible in the board's ps"
    finally:
        stop = edgegan("demo", "pi", "--stop", "--target", target.url, *target.args(), "--json")
    assert stop.returncode == 0, stop.stderr
    assert json.loads(stop.stdout)["status"] == "stopped"
    assert board_processes(target) == []
    assert not board_has(target, posixpath_join(setup_result, "demo", "demo.pid"))
    if target.emulated:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
    again = edgegan("demo", "pi", "--status", "--target", target.url, *target.args(), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "not running"


def posixpath_join(setup_result: dict, *parts: str) -> str:
    """A path in edgegan's folder on the board (the parent of the setup venv)."""
    import posixpath

    return posixpath.join(posixpath.dirname(setup_result["venv"]), *parts)
