"""`edgegan demo phone BUNDLE`: the phone demo page (a grid of samples generated in the browser by
onnxruntime-web, new latents on every tap, the format and per-inference latency shown) served
for a phone over ``adb reverse`` or Wi-Fi; with ``--apk OUT.apk`` the same page, runtime and model
packed into a WebView APK instead (edgegan.demos.apk).

The page is served by the browser runner's allow-list server (edgegan.web.server.WebServer: URL ->
file, no path ever joined from the request, no POST routes)."""
from __future__ import annotations

import argparse
import json
import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, MissingDependencyError
from ..web.server import CONTENT_TYPES, RUNTIME_FILES, WebServer, node_modules_dir

log = logging.getLogger(__name__)

PAGE_DIR = Path(__file__).parent / "phone_page"
FORMATS = ("onnx", "ort-int8")  # what onnxruntime-web runs; tflite formats need tfjs-tflite (not here yet)
LABELS = {"onnx": "fp32", "ort-int8": "int8"}
# onnxruntime-web's wasm-only ES module build, its loader and its wasm (single-threaded CPU path):
# the dist files the browser runner serves too
ORT_FILES = tuple(Path(f).name for f in RUNTIME_FILES["onnxruntime-web"] if "/dist/" in f)
GRID = 4
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class Asset:
    """One file of the page: served at ``/<name>``, packed as ``assets/<name>`` in the APK."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()  # type: ignore[union-attr]

    @property
    def mime(self) -> str:
        return CONTENT_TYPES.get(Path(self.name).suffix, "application/octet-stream")


def runtime_files() -> list[Path]:
    dist = node_modules_dir() / "onnxruntime-web" / "dist"
    missing = [n for n in ORT_FILES if not (dist / n).is_file()]
    if missing:
        raise MissingDependencyError(
            f"onnxruntime-web is not installed ({dist} lacks {', '.join(missing)}); run `make web-packages` "
            "(npm ci in web/) or point EDGEGAN_WEB_MODULES at a node_modules folder that has it")
    return [dist / n for n in ORT_FILES]


def page_assets(bundle_dir: str | Path, fmt: str | None = None) -> list[Asset]:
    """The allow-list of the page for a bundle: html, js, config.json, runtime, model(s).
    ``fmt`` None: every format of FORMATS the bundle has ok (fp32 first, the default)."""
    from ..bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    mf = bundle.manifest
    spec = mf.input
    if spec.get("kind") != "latent":
        raise ConfigError(f"the phone demo draws samples from random latents; bundle '{bundle_dir}' takes "
                          f"{spec.get('kind')} inputs (shape {spec.get('shape')})")
    wanted = [fmt] if fmt else list(FORMATS)
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"the phone demo runs {', '.join(FORMATS)} (onnxruntime-web), not '{fmt}'")
    recs = [r for r in mf.artifacts if r.format in wanted and r.status != "failed" and r.path]
    if not recs:
        have = ", ".join(f"{r.format} ({r.status})" for r in mf.artifacts) or "none"
        raise ConfigError(f"bundle '{bundle_dir}' has no usable {' or '.join(wanted)} artifact (it has: {have}); "
                          f"re-export with --formats {','.join(wanted)}")
    assets = [Asset("index.html", PAGE_DIR / "index.html"), Asset("demo.js", PAGE_DIR / "demo.js")]
    formats = []
    for rec in recs:
        name = f"models/{rec.format}.onnx"
        assets.append(Asset(name, bundle.artifact_path(rec)))
        formats.append({"format": rec.format, "label": LABELS[rec.format], "url": name, "bytes": rec.bytes,
                        "psnr_db": rec.fidelity.get("psnr_db")})
    rng = mf.output_range()
    config = {
        "model": mf.model.name, "grid": GRID, "formats": formats, "default": formats[0]["format"],
        "input": {"shape": list(spec["shape"]), "distribution": spec.get("distribution", "normal"),
                  "low": spec.get("low", -1.0), "high": spec.get("high", 1.0)},
        "output": {"shape": list(mf.output["shape"]), "range": [rng.lo, rng.hi]},
    }
    assets.append(Asset("config.json", data=json.dumps(config, indent=1).encode()))
    assets += [Asset(f"ort/{p.name}", p) for p in runtime_files()]
    return assets


def make_server(assets: list[Asset], lan: bool = False, port: int = DEFAULT_PORT) -> WebServer:
    """A started WebServer that answers exactly the allow-listed names (``/`` = index.html);
    ``lan``: on every interface instead of 127.0.0.1."""
    server = WebServer(port=port, lan=lan)
    for a in assets:
        for url in ("/" + a.name, "/") if a.name == "index.html" else ("/" + a.name,):
            if a.data is not None:
                server.add_bytes(url, a.data, a.mime)
            else:
                server.add_file(url, a.path, a.mime)  # type: ignore[arg-type]
    try:
        return server.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {server.host}:{port} ({exc.strerror}); pick another --port") from None


def lan_address() -> str | None:
    """This host's address on the default route (no packet is sent: UDP connect only)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere
            return s.getsockname()[0]
    except OSError:
        return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="a bundle folder from `edgegan export` with an onnx and/or ort-int8 artifact")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="only this format (default: every one of onnx / ort-int8 the bundle has, selectable on the page)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT}; 0 = any free one)")
    p.add_argument("--lan", action="store_true", help="listen on all interfaces, for a phone on the same Wi-Fi (default: 127.0.0.1 only)")
    p.add_argument("--apk", metavar="OUT.apk", default=None,
                   help="instead of serving: build a WebView APK with the page, runtime and model (Debian's aapt, smali, apksigner)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --apk file")


def run(args: argparse.Namespace) -> int:
    assets = page_assets(args.bundle, args.format)
    if args.apk:
        from .apk import build_apk

        out = build_apk(assets, Path(args.apk), force=args.force)
        print(f"built {out} ({out.stat().st_size / 1e6:.1f} MB): adb install -r {out}", flush=True)
        return 0
    server = make_server(assets, args.lan, args.port)
    port = server.port
    url = f"http://localhost:{port}/"
    print(f"serving the phone demo on {url} (Ctrl-C stops it)", flush=True)
    print("on a phone connected over USB (developer options > USB debugging):", flush=True)
    print(f"  adb reverse tcp:{port} tcp:{port}", flush=True)
    print(f"  adb shell am start -a android.intent.action.VIEW -d {url}", flush=True)
    if args.lan:
        print(f"or on the same Wi-Fi, open http://{lan_address() or 'THIS-HOST-IP'}:{port}/ on the phone", flush=True)
    else:
        print("or on the same Wi-Fi: rerun with --lan and open http://THIS-HOST-IP:"
              f"{port}/ on the phone", flush=True)
    try:
        threading.Event().wait()  # the server runs in its own thread until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
