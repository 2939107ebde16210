"""`edgegan demo pi` end to end on this host: the CLI deploys through a REAL loopback sshd, the
gallery service runs detached with this venv's python + real ONNX Runtime, the page and its
samples are fetched over HTTP, and --status / --stop / the one-line errors are checked. The
emulated aarch64 board runs the same flow in device_tests/test_demo_pi.py (with a screenshot)."""
from __future__ import annotations

import base64
import io
import json
import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from support_sshd import LoopbackSSHD, free_port, sshd_missing

pytestmark = pytest.mark.skipif(sshd_missing() is not None, reason=f"no loopback sshd: {sshd_missing()}")
GALLERY = Path(__file__).resolve().parents[1] / "edgegan" / "demos" / "edgegan_gallery.py"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with LoopbackSSHD(tmp_path_factory.mktemp("sshd")) as d:
        yield d


def demo(sshd, workdir: Path, *args: str, python: str | None = sys.executable):
    conn = ["--target", sshd.url, "--identity", str(sshd.identity), "--known-hosts", str(sshd.known_hosts),
            "--workdir", str(workdir), "--connect-timeout", "5"]
    return run_cli("demo", "pi", *args, *conn, *(["--python", python] if python else []))


def get(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def gallery_pids() -> list[int]:
    """Live gallery service processes on this machine (from /proc, as `ps` would list them)."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{e}/cmdline").read_bytes()
            state = Path(f"/proc/{e}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b"edgegan_gallery" in cmd and b" stop" not in cmd.replace(b"\0", b" ") and state not in ("Z", "X"):
            out.append(int(e))
    return out


def png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def expected_first_sample(bundle: Path, seed: int) -> np.ndarray:
    """The first sample of a gallery seeded with ``seed``, computed here without the service:
    the same numpy draw, the artifact run by onnxruntime directly, mapped [-1, 1] -> 0..255."""
    import onnxruntime as ort

    manifest = json.loads((bundle / "bundle.json").read_text())
    rec = next(a for a in manifest["artifacts"] if a["format"] == "onnx")
    x = np.random.default_rng(seed).standard_normal((1, *manifest["input"]["shape"]), dtype=np.float32)
    sess = ort.InferenceSession(str(bundle / rec["path"]), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0][0, 0]
    lo, hi = manifest["model"]["output_range"]["lo"], manifest["model"]["output_range"]["hi"]
    return np.round(np.clip((y - lo) / (hi - lo), 0, 1) * 255)


def test_gallery_lifecycle_through_ssh(sshd, tiny_bundle, tmp_path):
    bundle = Path(tiny_bundle[0])
    work = tmp_path / "board"
    before = set(gallery_pids())

    # no setup venv on the "board" and no --python: one line telling the user what to run
    proc = demo(sshd, work, str(bundle), "--port", str(free_port()), python=None)
    assert proc.returncode == 7 and "edgegan device setup" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

    # a format the bundle does not hold: one line naming the formats it has
    proc = demo(sshd, work, str(bundle), "--format", "tflite-nope")
    assert proc.returncode != 0 and "has no 'tflite-nope' artifact" in proc.stderr and "onnx" in proc.stderr

    # the port is taken by someone else: one line, nothing left running, no pid file
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = demo(sshd, work, str(bundle), "--port", str(port), "--bind", "127.0.0.1")
    assert proc.returncode == 7 and f"port {port} is busy" in proc.stderr, proc.stderr
    assert set(gallery_pids()) == before and not (work / "demo" / "demo.pid").exists()

    port = free_port()
    proc = demo(sshd, work, str(bundle), "--port", str(port), "--bind", "127.0.0.1", "--seed", "7", "--max-fps", "4",
                "--grid", "64", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    try:
        assert out["status"] == "running" and out["format"] == "onnx" and out["port"] == port
        assert out["forward"].startswith(f"ssh -N -L {port}:localhost:{port} -p {sshd.port} ")
        pid = out["pid"]
        assert pid in gallery_pids() and json.loads((work / "demo" / "demo.pid").read_text())["pid"] == pid
        # the service outlived the ssh session that started it and serves the page
        status, ctype, body = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and ctype.startswith("text/html") and b"edgegan live gallery" in body
        deadline = time.monotonic() + 60
        while True:
            state = json.loads(get(f"http://127.0.0.1:{port}/state.json")[2])
            if state["inferences"] >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert state["inferences"] >= 4 and state["runtime"] == "onnxruntime" and state["error"] is None
        assert state["latency_ms"]["p50"] > 0 and state["fps"] is None or state["fps"] > 0
        power = state["power"]["provenance"]
        assert power == "unavailable" or power.startswith("measured("), power
        seqs = [s["seq"] for s in state["samples"]]
        assert seqs == sorted(seqs, reverse=True) and seqs[-1] == 1  # newest first; seq 1 still in the 64-grid
        first = png_pixels(base64.b64decode(state["samples"][-1]["png"]))
        assert first.shape == (32, 32) and first.dtype == np.uint8
        assert np.abs(first.astype(int) - expected_first_sample(bundle, 7)).max() <= 1
        imgs = [png_pixels(base64.b64decode(s["png"])) for s in state["samples"][:4]]
        assert all(not np.array_equal(imgs[0], im) for im in imgs[1:])  # new latents, not one sample repeated
        status, ctype, png = get(f"http://127.0.0.1:{port}/sample/0.png")
        assert status == 200 and ctype == "image/png" and png_pixels(png).shape == (32, 32)

        proc = demo(sshd, work, "--status", "--json")
        assert proc.returncode == 0, proc.stderr
        st = json.loads(proc.stdout)
        assert st["status"] == "running" and st["pid"] == pid and st["state"]["inferences"] >= 4
    finally:
        stop = demo(sshd, work, "--stop", "--json")
    assert stop.returncode == 0, stop.stderr
    assert json.loads(stop.stdout)["status"] == "stopped"
    assert pid not in gallery_pids() and set(gallery_pids()) == before
    assert not (work / "demo" / "demo.pid").exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    assert "stopped after" in (work / "demo" / "demo.log").read_text()
    again = demo(sshd, work, "--stop", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "not running"
    proc = demo(sshd, work, "--status")
    assert proc.returncode == 0 and "not running" in proc.stdout


def test_unreachable_board_is_one_line(tmp_path):
    proc = run_cli("demo", "pi", "x", "--target", f"ssh://nobody@127.0.0.1:{free_port()}", "--connect-timeout", "2",
                   "--stop")
    assert proc.returncode == 7 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "127.0.0.1" in proc.stderr


def test_gallery_service_imports_only_stdlib_and_numpy():
    """It runs on the board beside the runner: stdlib + numpy (+ the runner, loaded by path)."""
    from test_architecture import runner_violations

    assert runner_violations(GALLERY) == []


def test_png_writer_round_trips_through_pillow():
    """The board writes PNGs with zlib by hand (no Pillow there): Pillow must read them back."""
    import edgegan.demos.edgegan_gallery as g

    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (13, 7), dtype=np.uint8)
    rgb = rng.integers(0, 256, (5, 9, 3), dtype=np.uint8)
    assert np.array_equal(png_pixels(g.png_bytes(gray)), gray)
    assert np.array_equal(png_pixels(g.png_bytes(rgb)), rgb)
    y = np.linspace(-1.5, 1.5, 3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    px = g.to_pixels(np, y, -1.0, 1.0)
    assert px.shape == (4, 4, 3) and px.min() == 0 and px.max() == 255
