"""`edgegan demo pi BUNDLE --target ssh://pi@host`: a live sample gallery served by the board.

The host pushes one artifact of the bundle (content-addressed, like `edgegan profile`), the
runner and the small board-side service ``edgegan_gallery.py`` into edgegan's folder on the
board, then starts the service detached with the board's setup venv. The service generates
samples from new random latents continuously and serves a page (grid of the latest samples,
latency per inference, inferences/s, power where a real source exists) on the board's port.
``--status`` asks it how it is doing, ``--stop`` stops it (SIGTERM, then a check that its
process is gone). Board layout, beside what `edgegan device setup` and profile made::

    demo/edgegan_gallery-<sha>.py   the service (stdlib + numpy; imports the runner by path)
    demo/demo.json                  what to run: artifact, I/O convention, input spec, range
    demo/demo.pid / demo.log        written by the running service; the pid file goes with it
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import posixpath
import shlex
import tempfile
from pathlib import Path
from typing import Callable, Optional

from ..config import JsonConfig
from ..errors import BundleError, ConfigError, DeviceError
from ..devices.target_args import add_target_arguments, target_options

SERVICE_PATH = Path(__file__).with_name("edgegan_gallery.py")
DEMO_DIR = "demo"
# exit codes of edgegan_gallery.py start (kept in step with that file)
EXIT_PORT_BUSY, EXIT_RUNNING = 3, 4
PREFERRED_FORMATS = ("onnx", "tflite-fp32", "ort-int8", "tflite-int8")


@dataclasses.dataclass
class PiDemoConfig(JsonConfig):
    """One `edgegan demo pi` call: which bundle and format, where, on which port."""

    target: str
    bundle: Optional[str] = None
    format: Optional[str] = None
    port: int = 8080
    bind: str = "0.0.0.0"
    threads: int = 1
    max_fps: float = 0.0  # 0: as fast as the board runs it
    grid: int = 16
    seed: Optional[int] = None  # None: fresh latents every start; a number: the same sequence every start
    start_timeout_s: float = 300.0

    def validate(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"--port must be 1-65535, got {self.port}", field="port")
        if self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}", field="threads")
        if self.max_fps < 0:
            raise ConfigError(f"--max-fps must be >= 0 (0: no cap), got {self.max_fps}", field="max_fps")
        if not 1 <= self.grid <= 64:
            raise ConfigError(f"--grid must be 1-64 samples, got {self.grid}", field="grid")


def pick_artifact(bundle, fmt: Optional[str]):
    """The artifact record to run: ``fmt``, else the first usable of PREFERRED_FORMATS, else any."""
    records = bundle.artifact_records()
    if fmt:
        rec = bundle.artifact(fmt)  # BundleError naming the formats the bundle has
        if rec.status == "failed" or rec.path is None:
            raise BundleError(f"'{fmt}' failed at export ({rec.reason}); pick another --format")
        return rec
    usable = [r for r in records if r.status != "failed" and r.path]
    if not usable:
        raise BundleError(f"bundle '{bundle.root}' has no usable artifact; re-export it")
    by_fmt = {r.format: r for r in usable}
    return next((by_fmt[f] for f in PREFERRED_FORMATS if f in by_fmt), usable[0])


def _service_argv(session, *args: str, python: Optional[str] = None) -> list:
    return [python or session.python, ensure_service(session), *args, "--pidfile", session.path(DEMO_DIR, "demo.pid")]


def ensure_service(session) -> str:
    """Push the gallery service (content-addressed, so a changed service is never stale)."""
    data = SERVICE_PATH.read_bytes()
    remote = session.path(DEMO_DIR, f"edgegan_gallery-{hashlib.sha256(data).hexdigest()[:12]}.py")
    if session.t.size(remote) != len(data):
        session.t.mkdir(posixpath.dirname(remote))
        session.t.push(SERVICE_PATH, remote)
    return remote


def _push_json(t, data: dict, remote: str) -> None:
    with tempfile.TemporaryDirectory(prefix="edgegan-demo-") as tmp:
        p = Path(tmp) / posixpath.basename(remote)
        p.write_text(json.dumps(data, indent=1))
        t.push(p, remote)


def _json_out(res, what: str) -> dict:
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        from ..devices.transport import stderr_tail

        raise DeviceError(f"{what}: the gallery service printed no status ({stderr_tail(res.stderr + res.stdout)})") from None


def _open(cfg: PiDemoConfig, options):
    from ..devices.session import DeviceSession
    from ..devices.targets import open_target

    t = open_target(cfg.target, options)
    return t, DeviceSession(t, options.workdir, options.python)


def start_pi_demo(cfg: PiDemoConfig, options=None, progress: Callable[[str], None] | None = None) -> dict:
    """Deploy + start the gallery; returns {status, url, pid, port, format, ...}. A demo already
    running there is replaced."""
    from ..bundle import Bundle, sha256_file
    from ..devices.transport import TargetOptions

    cfg.validate()
    say = progress or (lambda msg: None)
    options = options or TargetOptions()
    if not cfg.bundle:
        raise ConfigError("give the BUNDLE to deploy (or --stop / --status)")
    bundle = Bundle.load(cfg.bundle)
    rec = pick_artifact(bundle, cfg.format)
    local_art = bundle.artifact_path(rec)
    actual = sha256_file(local_art)
    if actual != rec.sha256:  # never deploy a file the export did not make
        raise BundleError(f"{rec.path} does not match its sha256 in bundle.json: modified or corrupt; re-export the bundle")
    m = bundle.manifest
    rng = m.output_range()
    t, s = _open(cfg, options)
    with t:
        if options.python is None and t.size(s.venv_python) is None:
            raise DeviceError(f"no edgegan venv on {t.target} ({s.venv_python}): run `edgegan device setup "
                              f"{cfg.target}` first")
        python = options.python or s.venv_python
        say(f"pushing {rec.format} ({local_art.stat().st_size / 1e6:.1f} MB), the runner and the gallery service")
        remote_art = s.path("artifacts", f"{actual}{posixpath.splitext(rec.path)[1]}")
        if t.size(remote_art) != local_art.stat().st_size:
            t.mkdir(posixpath.dirname(remote_art))
            t.push(local_art, remote_art)
        runner = s.ensure_runner()
        ensure_service(s)
        demo = {"format": rec.format, "artifact": remote_art, "io": rec.io, "input": m.input,
                "output_range": [rng.lo, rng.hi], "model": m.model.name, "bundle": Path(cfg.bundle).name,
                "artifact_sha256": actual, "threads": cfg.threads, "max_fps": cfg.max_fps, "grid": cfg.grid, "seed": cfg.seed}
        if m.input.get("kind", "latent") != "latent":  # image-to-image: the bundle's stored inputs, cycled
            demo["inputs"] = s.path(DEMO_DIR, "inputs.npy")
            t.push(bundle.inputs_path(), demo["inputs"])
        conf = s.path(DEMO_DIR, "demo.json")
        _push_json(t, demo, conf)
        argv = _service_argv(s, "start", "--config", conf, "--runner", runner, "--port", str(cfg.port),
                             "--bind", cfg.bind, "--log", s.path(DEMO_DIR, "demo.log"),
                             "--wait", str(cfg.start_timeout_s), python=python)
        say(f"starting the gallery service on port {cfg.port} (loading {rec.format} on the board)")
        res = t.run(argv, timeout=cfg.start_timeout_s + 120)
        replaced = None
        if res.exit_code == EXIT_RUNNING:
            replaced = _json_out(res, "start")
            say(f"replacing the demo already running there ({replaced.get('format')} on port {replaced.get('port')})")
            _json_out(t.run(_service_argv(s, "stop", python=python), timeout=120).check("stop the running demo"), "stop")
            res = t.run(argv, timeout=cfg.start_timeout_s + 120)
        if res.exit_code == EXIT_PORT_BUSY:
            raise DeviceError(f"port {cfg.port} is busy on {t.target}: another program listens there; pick another "
                              "with --port")
        if res.exit_code != 0:
            from ..devices.transport import stderr_tail

            raise DeviceError(f"the gallery service did not start on {t.target}: "
                              f"{stderr_tail(res.stderr) or stderr_tail(res.stdout) or f'exit {res.exit_code}'}")
        out = _json_out(res, "start")
        host = getattr(t, "host", "localhost")
        port = out.get("port", cfg.port)
        user, ssh_port = getattr(t, "user", None), getattr(t, "port", 22)
        login = f"{user}@{host}" if user else host
        out.update({"target": t.target, "bundle": str(cfg.bundle), "format": rec.format, "replaced": replaced,
                    "url": f"http://{host}:{port}/" if cfg.bind != "127.0.0.1" else None,
                    "forward": (f"ssh -N -L {port}:localhost:{port}" + (f" -p {ssh_port}" if ssh_port != 22 else "")
                                + f" {login}"),
                    "forward_url": f"http://localhost:{port}/"})
        return out


def stop_pi_demo(cfg: PiDemoConfig, options=None) -> dict:
    """Stop the gallery (SIGTERM, then SIGKILL if it hangs); {status: stopped | killed | not running}."""
    from ..devices.transport import TargetOptions

    t, s = _open(cfg, options or TargetOptions())
    with t:
        res = t.run(_service_argv(s, "stop"), timeout=120)
        out = _json_out(res, "stop")
        if res.exit_code != 0:
            raise DeviceError(f"the gallery service (pid {out.get('pid')}) is still running on {t.target} after "
                              "SIGKILL; look at it with `ps` on the board")
        out["target"] = t.target
        return out


def pi_demo_status(cfg: PiDemoConfig, options=None) -> dict:
    """{status: running | not running, port, format, state: {latency_ms, fps, power, ...}}."""
    from ..devices.transport import TargetOptions

    t, s = _open(cfg, options or TargetOptions())
    with t:
        out = _json_out(t.run(_service_argv(s, "status"), timeout=120).check("gallery status"), "status")
        out["target"] = t.target
        return out


# ---------------------------------------------------------------------------- CLI (`edgegan demo pi`)
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", nargs="?", help="bundle directory from `edgegan export` (not needed with --stop/--status)")
    p.add_argument("--target", required=True, help="the board: ssh://user@host[:port], user@host or a Host of your ssh config")
    p.add_argument("--format", help="artifact to run (default: onnx, else the first usable one); see the bundle's table")
    p.add_argument("--port", type=int, default=8080, help="port of the gallery page on the board (default 8080)")
    p.add_argument("--bind", default="0.0.0.0", help="address the board listens on (default 0.0.0.0: your LAN; "
                   "127.0.0.1: only through an ssh port forward)")
    p.add_argument("--threads", type=int, default=1, help="runtime threads on the board (default 1)")
    p.add_argument("--max-fps", type=float, default=0.0, help="cap on inferences per second (default 0: no cap)")
    p.add_argument("--grid", type=int, default=16, help="samples shown in the gallery (default 16)")
    p.add_argument("--seed", type=int, help="seed of the latents (default: new ones every start)")
    p.add_argument("--start-timeout", type=float, default=300.0, help="seconds the board may take to load the model")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--stop", action="store_true", help="stop the gallery service on the board")
    act.add_argument("--status", action="store_true", help="is the gallery running, and how fast")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_target_arguments(p, "target connection (as for `edgegan device`)")


def _options(args: argparse.Namespace):
    return target_options(args)


def _again(args: argparse.Namespace, flag: str) -> str:
    parts = ["edgegan", "demo", "pi", flag, "--target", args.target]
    for opt in ("identity", "known_hosts", "workdir", "ssh_config"):
        if getattr(args, opt):
            parts += ["--" + opt.replace("_", "-"), getattr(args, opt)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from ..devices.targets import scheme_of

    cfg = PiDemoConfig(target=args.target, bundle=args.bundle, format=args.format, port=args.port, bind=args.bind,
                       threads=args.threads, max_fps=args.max_fps, grid=args.grid, seed=args.seed, start_timeout_s=args.start_timeout)
    if scheme_of(args.target, args.ssh_config) != "ssh":
        raise ConfigError(f"the pi demo runs on a board over ssh; got --target {args.target} (use ssh://user@host)")
    if args.stop:
        out = stop_pi_demo(cfg, _options(args))
        print(json.dumps(out, indent=1) if args.json else
              f"gallery on {out['target']}: {out['status']}" + (f" (pid {out['pid']})" if out.get("pid") else ""))
        return 0
    if args.status:
        out = pi_demo_status(cfg, _options(args))
        if args.json:
            print(json.dumps(out, indent=1))
        elif out["status"] != "running":
            print(f"gallery on {out['target']}: not running")
        else:
            st = out.get("state") or {}
            lat = (st.get("latency_ms") or {}).get("p50")
            pw = (st.get("power") or {})
            print(f"gallery on {out['target']}: running (pid {out['pid']}, port {out['port']}), {st.get('model')} "
                  f"{st.get('format')}: {st.get('inferences')} samples, p50 {lat} ms/inference, {st.get('fps')} "
                  f"inferences/s, power {str(pw.get('avg_w')) + ' W ' + pw['provenance'] if pw.get('avg_w') is not None else 'n/a'}")
        return 0
    import sys

    out = start_pi_demo(cfg, _options(args), progress=lambda msg: print(f"  {msg}", file=sys.stderr))
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"gallery running on {out['target']} (pid {out['pid']}, {out['model']} {out['format']})")
    if out["url"]:
        print(f"  open  {out['url']}")
    print(f"  or forward the port:  {out['forward']}   then open {out['forward_url']}")
    print(f"  status: {_again(args, '--status')}")
    print(f"  stop:   {_again(args, '--stop')}")
    return 0
