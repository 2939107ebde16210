#!/usr/bin/env python3
"""edgegan live gallery service: runs ON the board (`edgegan demo pi` copies it there).

Generates samples continuously from new random latents with one artifact, and serves a page
with a grid of the latest samples, latency per inference, inferences per second and board power
where a real source exists. Standard library + numpy only; the artifact is loaded and run by the
edgegan runner (``--runner PATH``, the same file `edgegan profile` pushes), so the runtime
table, the I/O conventions and the power probes are the runner's, not a second copy.

    python3 edgegan_gallery.py start --config demo.json --runner RUNNER.py --pidfile demo.pid --log demo.log
    python3 edgegan_gallery.py status --pidfile demo.pid      # JSON on stdout
    python3 edgegan_gallery.py stop --pidfile demo.pid        # SIGTERM, wait, SIGKILL only if stuck

Keep "edgegan_gallery" in the file name (the host pushes it as edgegan_gallery-<sha>.py): stop and
status recognise the service's process by it, so a reused pid is never signalled.

``start`` binds the port first (a busy port is exit code 3), then detaches (double fork, new
session, stdio to the log) and returns only when the model is loaded and has run once (ready)
or the service failed (its one-line reason on stderr). The pid file is written by the service
itself and removed when it exits.
"""
from __future__ import annotations

import argparse
import base64
import collections
import errno
import http.server
import importlib.util
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import zlib

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PORT_BUSY, EXIT_RUNNING = 0, 1, 2, 3, 4
SERVICE_TAG = "edgegan_gallery"  # this file's name, in the service's argv: how stop/status recognise it
GRID = 16


# ---------------------------------------------------------------------------- PNG (no Pillow on a board)
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(pixels) -> bytes:
    """An 8-bit PNG of ``pixels`` (numpy uint8, HxW gray or HxWx3 RGB), written with zlib."""
    h, w = pixels.shape[:2]
    color = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))  # filter type 0 per row
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


def to_pixels(np, y, lo: float, hi: float):
    """One output [C, H, W] in [lo, hi] -> uint8 HxW (1 channel) or HxWx3 (3 channels)."""
    a = np.clip((np.asarray(y, np.float32) - lo) / (hi - lo), 0.0, 1.0) * 255.0 + 0.5
    a = a.astype(np.uint8)
    if a.shape[0] == 3:
        return np.ascontiguousarray(a.transpose(1, 2, 0))
    return np.ascontiguousarray(a[0])


# ---------------------------------------------------------------------------- the generator
class Gallery:
    """The model, the latest samples and the running statistics (shared with the HTTP threads)."""

    def __init__(self, cfg: dict, runner) -> None:
        import numpy as np

        self.np, self.cfg, self.runner = np, cfg, runner
        self.artifact = runner.Artifact(cfg["artifact"], cfg["format"], cfg.get("io") or {}, int(cfg.get("threads", 1)))
        self.lo, self.hi = (float(v) for v in cfg["output_range"])
        spec = cfg["input"]
        self.shape = tuple(int(d) for d in spec["shape"])
        self.stored = runner.load_inputs(cfg["inputs"]) if spec.get("kind") != "latent" and cfg.get("inputs") else None
        self.rng = np.random.default_rng(cfg.get("seed"))
        self.max_fps = float(cfg.get("max_fps") or 0)
        self.lock = threading.Lock()
        self.samples: collections.deque = collections.deque(maxlen=int(cfg.get("grid", GRID)))
        self.latency: collections.deque = collections.deque(maxlen=200)
        self.done: collections.deque = collections.deque(maxlen=2000)  # perf_counter of finished inferences
        self.count = 0
        self.error: str | None = None
        self.started = time.time()
        self.stop = threading.Event()
        self.power = PowerMeter(runner)
        info = runner.device_info(with_runtimes=False)
        self.device = {k: info.get(k) for k in ("arch", "cpu", "cores", "os", "hostname", "python", "emulator")}

    def latent(self):
        spec = self.cfg["input"]
        if self.stored is not None:  # image-to-image models: cycle through the bundle's stored inputs
            return self.stored[self.count % len(self.stored)][None]
        if spec.get("distribution") == "uniform":
            return self.rng.uniform(float(spec.get("low", -1)), float(spec.get("high", 1)), (1, *self.shape)).astype("float32")
        return self.rng.standard_normal((1, *self.shape), dtype=self.np.float32)

    def step(self) -> None:
        x = self.latent()
        t0 = time.perf_counter()
        y = self.artifact.run_one(x)
        t1 = time.perf_counter()
        png = png_bytes(to_pixels(self.np, y[0], self.lo, self.hi))
        with self.lock:
            self.count += 1
            self.latency.append((t1 - t0) * 1000.0)
            self.done.append(t1)
            self.samples.appendleft({"seq": self.count, "png": base64.b64encode(png).decode()})

    def loop(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - shown on the page and in the log, the server stays up
                self.error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log(f"inference failed: {self.error}")
                self.stop.wait(2.0)
                continue
            if self.max_fps > 0:
                self.stop.wait(max(0.0, 1.0 / self.max_fps - (time.perf_counter() - t0)))

    def state(self) -> dict:
        np = self.np
        with self.lock:
            lat = list(self.latency)
            done = list(self.done)
            samples = list(self.samples)
            count = self.count
        now = time.perf_counter()
        recent = [t for t in done if now - t <= 5.0]
        span = (now - recent[0]) if len(recent) > 1 else 0.0
        stats = None
        if lat:
            a = np.asarray(lat)
            stats = {"last": round(float(a[-1]), 3), "p50": round(float(np.percentile(a, 50)), 3),
                     "p90": round(float(np.percentile(a, 90)), 3), "mean": round(float(a.mean()), 3), "window": len(lat)}
        return {
            "model": self.cfg.get("model"), "format": self.cfg["format"], "runtime": self.artifact.runtime,
            "bundle": self.cfg.get("bundle"), "device": self.device, "threads": self.cfg.get("threads", 1),
            "max_fps": self.max_fps or None, "inferences": count, "latency_ms": stats,
            "fps": round(len(recent) / span, 2) if span > 0 else None,
            "model_fps": round(1000.0 / stats["p50"], 1) if stats and stats["p50"] > 0 else None,
            "power": self.power.state(), "thermal_c": self.runner.thermal_zones(),
            "uptime_s": round(time.time() - self.started, 1), "error": self.error, "samples": samples,
        }


class PowerMeter:
    """Board power from the runner's probes (Pi 5 PMIC via vcgencmd, INA hwmon, RAPL, battery),
    sampled once a second; ``unavailable`` with each probe's reason when none reads a source."""

    def __init__(self, runner) -> None:
        self.runner = runner
        found, self.why = runner.available_probes()
        self.probe = found[0] if found else None
        self.readings: collections.deque = collections.deque(maxlen=10)  # (t, value)
        self.error: str | None = None

    def loop(self, stop: threading.Event) -> None:
        while self.probe is not None and not stop.is_set():
            try:
                self.readings.append((time.perf_counter(), float(self.probe.read())))
            except Exception as exc:  # noqa: BLE001 - a probe that stops reading is reported, not fatal
                self.error = str(exc)[:200]
                return
            stop.wait(1.0)

    def state(self) -> dict:
        if self.probe is None:
            return {"provenance": "unavailable", "avg_w": None,
                    "reason": "; ".join(f"{k}: {v}" for k, v in self.why.items())[:400] or "no power probe"}
        r = list(self.readings)
        watts = None
        if self.probe.kind == "energy" and len(r) >= 2 and r[-1][0] > r[0][0]:
            watts = (r[-1][1] - r[0][1]) / (r[-1][0] - r[0][0])
        elif self.probe.kind != "energy" and r:
            watts = sum(v for _, v in r) / len(r)
        return {"provenance": f"measured({self.probe.source()})", "avg_w": None if watts is None else round(watts, 3),
                "reason": self.error}


# ---------------------------------------------------------------------------- HTTP
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgegan live gallery</title>
<style>
body { font: 15px system-ui, sans-serif; margin: 0; background: #111; color: #eee; }
header { padding: 12px 16px; background: #1d1d1d; }
h1 { font-size: 18px; margin: 0 0 4px; }
.sub { color: #aaa; font-size: 13px; }
.stats { display: flex; flex-wrap: wrap; gap: 8px; padding: 12px 16px; }
.stat { background: #222; border-radius: 6px; padding: 6px 10px; min-width: 110px; }
.stat b { display: block; font-size: 20px; }
.stat span { color: #aaa; font-size: 12px; }
#grid { display: grid; grid-template-columns: repeat(4, 96px); gap: 8px; padding: 8px 16px 16px; }
#grid img { width: 96px; height: 96px; image-rendering: pixelated; background: #000; }
#err { color: #f77; padding: 0 16px; }
</style></head>
<body>
<header><h1>edgegan live gallery</h1><div class="sub" id="what">loading…</div></header>
<div class="stats">
 <div class="stat"><b id="lat">–</b><span>latency / inference (p50)</span></div>
 <div class="stat"><b id="fps">–</b><span>inferences / s</span></div>
 <div class="stat"><b id="count">–</b><span>samples generated</span></div>
 <div class="stat"><b id="power">–</b><span id="powersrc">power</span></div>
 <div class="stat"><b id="temp">–</b><span>temperature</span></div>
</div>
<div id="err"></div>
<div id="grid"></div>
<script>
const N = __GRID__;
const grid = document.getElementById("grid");
for (let i = 0; i < N; i++) { const im = document.createElement("img"); im.className = "sample"; im.alt = "sample"; grid.appendChild(im); }
const $ = (id) => document.getElementById(id);
async function tick() {
  try {
    const s = await (await fetch("state.json", {cache: "no-store"})).json();
    const d = s.device || {};
    $("what").textContent = `${s.model} · ${s.format} (${s.runtime}, ${s.threads} thread${s.threads > 1 ? "s" : ""}) · ` +
      `${d.cpu || d.arch || "board"}${d.emulator ? " · emulated: " + d.emulator : ""}`;
    const l = s.latency_ms;
    $("lat").textContent = l ? `${l.p50.toFixed(2)} ms` : "–";
    $("fps").textContent = s.fps ? s.fps.toFixed(1) + (s.max_fps ? ` (cap ${s.max_fps})` : "") : "–";
    $("count").textContent = s.inferences;
    const p = s.power;
    $("power").textContent = p.avg_w != null ? `${p.avg_w.toFixed(2)} W` : "n/a";
    $("powersrc").textContent = p.avg_w != null ? `board power, ${p.provenance}` : "power: no source on this board";
    $("powersrc").title = p.reason || "";
    const temps = Object.values(s.thermal_c || {});
    $("temp").textContent = temps.length ? `${Math.max(...temps).toFixed(1)} °C` : "n/a";
    $("err").textContent = s.error || "";
    const imgs = grid.querySelectorAll("img.sample");
    s.samples.forEach((smp, i) => {
      const im = imgs[i];
      if (im && im.dataset.seq != smp.seq) { im.src = "data:image/png;base64," + smp.png; im.dataset.seq = smp.seq; }
    });
    document.body.dataset.updated = String(s.inferences);
  } catch (e) { $("err").textContent = "lost the board: " + e; }
  setTimeout(tick, 700);
}
tick();
</script></body></html>
"""


class Handler(http.server.BaseHTTPRequestHandler):
    gallery: Gallery = None  # type: ignore[assignment]
    server_version = "edgegan-gallery"

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, PAGE.replace("__GRID__", str(self.gallery.samples.maxlen)).encode(), "text/html; charset=utf-8")
        elif path == "/state.json":
            self._send(200, json.dumps(self.gallery.state()).encode(), "application/json")
        elif path.startswith("/sample/") and path.endswith(".png") and path[8:-4].isdigit():
            with self.gallery.lock:
                samples = list(self.gallery.samples)
            i = int(path[8:-4])
            if i < len(samples):
                self._send(200, base64.b64decode(samples[i]["png"]), "image/png")
            else:
                self._send(404, b"no such sample yet\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    do_HEAD = do_GET

    def log_message(self, fmt, *args) -> None:  # the log file is for errors and lifecycle, not every poll
        pass


# ---------------------------------------------------------------------------- lifecycle
_LOG = None


def log(msg: str) -> None:
    stream = _LOG or sys.stderr
    stream.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
    stream.flush()


def load_runner(path: str):
    spec = importlib.util.spec_from_file_location("edgegan_runner", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import the edgegan runner from {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["edgegan_runner"] = mod  # its dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


def read_pidfile(path: str) -> dict | None:
    try:
        with open(path) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) gallery service process."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read()
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return SERVICE_TAG.encode() in cmd and state not in ("Z", "X")


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def serve(args, sock: socket.socket, ready_fd: int) -> None:
    """The detached service: load, run once, announce ready, then generate + serve until SIGTERM."""
    def announce(msg: dict) -> None:
        try:
            os.write(ready_fd, (json.dumps(msg) + "\n").encode())
        except OSError:
            pass

    try:
        with open(args.config) as fh:
            cfg = json.load(fh)
        runner = load_runner(args.runner)
        gallery = Gallery(cfg, runner)
        gallery.step()  # the model runs before we say ready
    except Exception as exc:  # noqa: BLE001 - reported to `start` as one line
        reason = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
        log(f"failed to start: {type(exc).__name__}: {reason}")
        announce({"status": "failed", "reason": reason})
        sys.exit(EXIT_FAILED)
    Handler.gallery = gallery
    server = http.server.ThreadingHTTPServer((args.bind, args.port), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.daemon_threads = True

    def on_term(signum, frame) -> None:
        gallery.stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    workers = [threading.Thread(target=gallery.loop, daemon=True),
               threading.Thread(target=gallery.power.loop, args=(gallery.stop,), daemon=True)]
    for w in workers:
        w.start()
    info = {"pid": os.getpid(), "port": sock.getsockname()[1], "bind": args.bind, "format": cfg["format"],
            "model": cfg.get("model"), "started": time.time(), "log": args.log}
    _write_atomic(args.pidfile, json.dumps(info))
    log(f"serving {cfg.get('model')} {cfg['format']} on {args.bind}:{info['port']} (pid {info['pid']})")
    announce({"status": "running", **info})
    os.close(ready_fd)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        gallery.stop.set()
        for w in workers:
            w.join(timeout=10)
        server.server_close()
        if (read_pidfile(args.pidfile) or {}).get("pid") == os.getpid():
            os.unlink(args.pidfile)
        log(f"stopped after {gallery.count} inferences")


def cmd_start(args) -> int:
    old = read_pidfile(args.pidfile)
    if old and alive(old["pid"]):
        print(json.dumps({"status": "already running", **old}))
        return EXIT_RUNNING
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.bind, args.port))
        sock.listen(16)
    except OSError as exc:
        sock.close()
        what = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be opened ({exc.strerror})"
        sys.stderr.write(f"port {args.port} on {args.bind} {what}\n")
        return EXIT_PORT_BUSY if exc.errno == errno.EADDRINUSE else EXIT_FAILED
    rfd, wfd = os.pipe()
    if os.fork() == 0:  # child: a new session, then the service as a grandchild nobody waits for
        os.close(rfd)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        global _LOG
        _LOG = open(args.log, "a", buffering=1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(_LOG.fileno(), 1)
        os.dup2(_LOG.fileno(), 2)
        os.close(devnull)
        try:
            serve(args, sock, wfd)
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else EXIT_FAILED)
        except BaseException as exc:  # noqa: BLE001 - the log is all a detached process has
            log(f"crashed: {type(exc).__name__}: {exc}")
            os._exit(EXIT_FAILED)
        os._exit(EXIT_OK)
    os.close(wfd)
    sock.close()
    os.wait()  # the intermediate child exits at once
    buf, deadline = b"", time.monotonic() + args.wait
    while b"\n" not in buf and time.monotonic() < deadline:
        import select

        ready, _, _ = select.select([rfd], [], [], 1.0)
        if ready:
            chunk = os.read(rfd, 4096)
            if not chunk:
                break
            buf += chunk
    os.close(rfd)
    try:
        msg = json.loads(buf.decode().splitlines()[0]) if buf.strip() else None
    except ValueError:
        msg = None
    if msg and msg.get("status") == "running":
        print(json.dumps(msg))
        return EXIT_OK
    if msg is None:
        tail = ""
        try:
            with open(args.log) as fh:
                tail = " | ".join(ln.strip() for ln in fh.read().strip().splitlines()[-3:])
        except OSError:
            pass
        why = (f"not ready after {args.wait:.0f} s" if time.monotonic() >= deadline else "the service exited") + \
            (f"; log: {tail}" if tail else "")
        p = read_pidfile(args.pidfile)
        if p and alive(p["pid"]):
            stop_pid(p["pid"], 10)
        sys.stderr.write(why + "\n")
        return EXIT_FAILED
    sys.stderr.write(msg.get("reason", "failed") + "\n")
    return EXIT_FAILED


def stop_pid(pid: int, timeout: float) -> str:
    """SIGTERM, wait up to ``timeout``, SIGKILL only if still there: 'stopped' or 'killed'."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "stopped"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return "stopped"
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "stopped"
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.1)
    return "killed"


def cmd_stop(args) -> int:
    p = read_pidfile(args.pidfile)
    if not p or not alive(p["pid"]):
        if os.path.exists(args.pidfile):
            os.unlink(args.pidfile)  # stale: the process is gone
        print(json.dumps({"status": "not running"}))
        return EXIT_OK
    how = stop_pid(p["pid"], args.timeout)
    if os.path.exists(args.pidfile):
        os.unlink(args.pidfile)
    print(json.dumps({"status": how, "pid": p["pid"], "port": p.get("port")}))
    return EXIT_OK if not alive(p["pid"]) else EXIT_FAILED


def cmd_status(args) -> int:
    p = read_pidfile(args.pidfile)
    if not p or not alive(p["pid"]):
        print(json.dumps({"status": "not running"}))
        return EXIT_OK
    out = {"status": "running", **p}
    try:
        import urllib.request

        host = "127.0.0.1" if p.get("bind") in ("0.0.0.0", "", None) else p["bind"]
        with urllib.request.urlopen(f"http://{host}:{p['port']}/state.json", timeout=10) as r:
            st = json.load(r)
        st.pop("samples", None)
        out["state"] = st
    except (OSError, ValueError) as exc:
        out["state_error"] = str(exc)[:200]
    print(json.dumps(out))
    return EXIT_OK


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description="edgegan live gallery service (runs on the board)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--config", required=True)
    s.add_argument("--runner", required=True)
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--log", required=True)
    s.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the model to load and run once")
    s.add_argument("--pidfile", required=True)
    for name in ("stop", "status"):
        q = sub.add_parser(name)
        q.add_argument("--pidfile", required=True)
        q.add_argument("--timeout", type=float, default=15.0)
    args = ap.parse_args(argv)
    return {"start": cmd_start, "stop": cmd_stop, "status": cmd_status}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
