"""A small HTTP server on 127.0.0.1 that serves an allow-list and takes size-checked POSTs.

Why not ``http.server.SimpleHTTPRequestHandler``: it maps URLs to a directory, so every file
under it (and, with a bug, above it) is readable and listed. Here a URL is served only when it
was registered, byte for byte (``/rt/a/../b`` is just an unknown key): no directory listing, no
path resolution, no traversal. Used by the browser runner (benchmark page) and the phone demo::

    from edgegan.web.server import WebServer, PostRejected

    with WebServer() as srv:                           # 127.0.0.1, a free port
        srv.add_file("/index.html", page)              # content type from the suffix
        srv.add_bytes("/config.json", b"{}", "application/json")
        srv.add_runtime_files("onnxruntime-web")       # /rt/<npm path> from web/node_modules
        srv.add_post("/done", handler, max_bytes=1 << 20, content_type="application/json")
        print(srv.url("/index.html"))

A POST handler gets the body (already checked against ``max_bytes`` and the content type,
before it is read) and returns a JSON-able reply; it raises :class:`PostRejected` to refuse.
Every response carries COOP/COEP (cross-origin isolation, which multi-threaded wasm needs for
SharedArrayBuffer), ``no-store`` and ``nosniff``. Requests whose Host header is not this
loopback address (DNS rebinding) are refused, except with ``lan=True`` (the phone demo's
``--lan``: every interface, any Host, since a phone on the Wi-Fi names this host by its address;
only for pages with nothing private). A server with no POST route answers POSTs 501.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import mimetypes
import os
import shutil
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

from ..errors import ConfigError, DeviceError

log = logging.getLogger(__name__)

NODE_MODULES_ENV = "EDGEGAN_WEB_MODULES"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
                 ".wasm": "application/wasm", ".json": "application/json", ".onnx": "application/octet-stream",
                 ".tflite": "application/octet-stream", ".bin": "application/octet-stream",
                 ".png": "image/png", ".css": "text/css", ".apk": "application/vnd.android.package-archive"}
SECURITY_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
                    "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

# The files each in-browser runtime's page loads, relative to web/node_modules (served at
# /rt/<path>). The pins are web/package.json + package-lock.json; nothing comes from a CDN.
RUNTIME_FILES = {
    "onnxruntime-web": ("onnxruntime-web/package.json", "onnxruntime-web/dist/ort.wasm.min.mjs",
                        "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
                        "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"),
    "tflite-web": ("@tensorflow/tfjs-tflite/package.json", "@tensorflow/tfjs-core/dist/tf-core.min.js",
                   "@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js",
                   "@tensorflow/tfjs-tflite/dist/tf-tflite.min.js",
                   *(f"@tensorflow/tfjs-tflite/wasm/tflite_web_api_{n}" for n in (
                       "cc.js", "cc.wasm", "cc_simd.js", "cc_simd.wasm", "cc_simd_threaded.js",
                       "cc_simd_threaded.wasm", "cc_simd_threaded.worker.js", "cc_threaded.js", "cc_threaded.wasm",
                       "cc_threaded.worker.js", "client.js"))),
}
RUNTIME_PREFIX = "/rt/"


class PostRejected(Exception):
    """Raised by a POST handler: the request is answered with ``status`` and ``message``."""

    def __init__(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = int(status)


def node_modules_dir() -> Path:
    """web/node_modules of this clone (``make web-packages``), or ``$EDGEGAN_WEB_MODULES``; unchecked."""
    env = os.environ.get(NODE_MODULES_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "web" / "node_modules"


def node_modules() -> Path:
    """:func:`node_modules_dir`; DeviceError with the make target when the in-browser runtimes
    are not installed."""
    path = node_modules_dir()
    if not (path / "onnxruntime-web" / "package.json").is_file():
        raise DeviceError(f"the in-browser runtimes are not installed ({path} has no onnxruntime-web): run "
                          f"`make web-packages` in the edgegan clone (npm ci into web/node_modules) or set "
                          f"${NODE_MODULES_ENV} to a node_modules folder that has them")
    return path


def npm_version(package: str) -> Optional[str]:
    """The installed version of an npm package in :func:`node_modules` (None if absent)."""
    try:
        return str(json.loads((node_modules() / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError, DeviceError):
        return None


@dataclasses.dataclass(frozen=True)
class _Static:
    content_type: str
    path: Optional[Path] = None
    data: Optional[bytes] = None


@dataclasses.dataclass(frozen=True)
class _Post:
    handler: Callable[[bytes], object]
    max_bytes: int
    content_type: str


PostHandler = Callable[[bytes], object]


class WebServer:
    """An allow-list HTTP server in a daemon thread (see the module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, lan: bool = False) -> None:
        if lan:
            host = "0.0.0.0"
        elif host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"WebServer serves on loopback only, not {host!r}")
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.lan = lan
        self._static: dict[str, _Static] = {}
        self._posts: dict[str, _Post] = {}
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.log: list[tuple[str, str, int]] = []  # (method, path, status) of every request, for tests/diagnosis

    # ------------------------------------------------------------------ routes
    @staticmethod
    def _check_url(url: str) -> str:
        if not url.startswith("/") or "?" in url or "#" in url or any(p in ("..", ".") for p in url.split("/")):
            raise ConfigError(f"WebServer: {url!r} is not an absolute URL path without dot segments")
        return url

    def add_file(self, url: str, path: Union[str, Path], content_type: Optional[str] = None) -> str:
        """Serve the file at ``path`` as ``url`` (read per request, so it is streamed, not held)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"WebServer: {path} is not a file")
        ctype = content_type or CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or \
            "application/octet-stream"
        with self._lock:
            self._static[self._check_url(url)] = _Static(ctype, path=path)
        return url

    def add_bytes(self, url: str, data: bytes, content_type: str) -> str:
        with self._lock:
            self._static[self._check_url(url)] = _Static(content_type, data=bytes(data))
        return url

    def add_post(self, url: str, handler: PostHandler, max_bytes: int, content_type: str) -> str:
        """Accept POSTs to ``url`` of at most ``max_bytes`` with this content type (checked before reading)."""
        with self._lock:
            self._posts[self._check_url(url)] = _Post(handler, int(max_bytes), content_type)
        return url

    def remove_prefix(self, prefix: str) -> None:
        """Forget every route under ``prefix`` (one finished run's files and endpoints)."""
        with self._lock:
            for table in (self._static, self._posts):
                for k in [k for k in table if k.startswith(prefix)]:
                    del table[k]

    def add_runtime_files(self, runtime: str, modules: Optional[Path] = None) -> str:
        """Serve ``RUNTIME_FILES[runtime]`` from web/node_modules under /rt/; returns the prefix."""
        if runtime not in RUNTIME_FILES:
            raise ConfigError(f"WebServer: no in-browser runtime {runtime!r}; known: {', '.join(RUNTIME_FILES)}")
        base = modules or node_modules()
        missing = [f for f in RUNTIME_FILES[runtime] if not (base / f).is_file()]
        if missing:
            raise DeviceError(f"{base} lacks {missing[0]} ({runtime}): run `make web-packages` (npm ci)")
        for rel in RUNTIME_FILES[runtime]:
            self.add_file(RUNTIME_PREFIX + rel, base / rel)
        return RUNTIME_PREFIX

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "WebServer":
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self.port), _handler_for(self))
            self.port = self._httpd.server_address[1]
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="edgegan-web", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str, host: Optional[str] = None) -> str:
        """Full URL of a registered path (``host`` e.g. ``localhost`` for a phone behind adb reverse)."""
        return f"http://{host or self.host}:{self.port}{path}"

    # ------------------------------------------------------------------ request side
    def _lookup_static(self, path: str) -> Optional[_Static]:
        with self._lock:
            return self._static.get(path)

    def _lookup_post(self, path: str) -> Optional[_Post]:
        with self._lock:
            return self._posts.get(path)

    def _post_missing(self) -> tuple[int, str]:
        """The answer to a POST to no POST route: 404, or 501 when the server takes no POSTs at all."""
        with self._lock:
            takes = bool(self._posts)
        return (HTTPStatus.NOT_FOUND, "not found") if takes else \
            (HTTPStatus.NOT_IMPLEMENTED, "this server takes no POSTs")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a browser closing a socket is not an error
        log.debug("web: connection from %s ended with an error", client_address, exc_info=True)


def _handler_for(server: WebServer):

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgegan"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args) -> None:  # noqa: D401 - stdlib hook; to logging, not stderr
            log.debug("web %s - %s", self.address_string(), fmt % args)

        def _send(self, status: int, body: bytes, ctype: str, head: bool = False) -> None:
            server.log.append((self.command, self.path[:200], int(status)))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in SECURITY_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": message}).encode(), "application/json")

        def _route(self, lookup: Callable[[str], Any], missing: tuple[int, str] = (HTTPStatus.NOT_FOUND, "not found")):
            """(path, route) of this request, or None once it is refused: a Host header that is not
            this loopback server's (DNS rebinding), or a path ``lookup`` does not know (``missing``)."""
            if not server.lan and \
                    self.headers.get("Host") not in {f"{h}:{server.port}" for h in ("127.0.0.1", "localhost", "[::1]")}:
                self._error(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host header")
                return None
            path = urlsplit(self.path).path
            entry = lookup(path)
            if entry is None:
                self._error(*missing)
                return None
            return path, entry

        def do_GET(self, head: bool = False) -> None:  # noqa: N802 - stdlib hook
            route = self._route(server._lookup_static)
            if route is None:
                return
            path, entry = route
            if entry.data is not None:
                self._send(HTTPStatus.OK, entry.data, entry.content_type, head)
                return
            try:
                fh = open(entry.path, "rb")
            except OSError:
                self._error(HTTPStatus.NOT_FOUND, "not found")
                return
            with fh:
                size = os.fstat(fh.fileno()).st_size
                server.log.append((self.command, path, 200))
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", entry.content_type)
                self.send_header("Content-Length", str(size))
                for k, v in SECURITY_HEADERS.items():
                    self.send_header(k, v)
                self.end_headers()
                if not head:
                    try:
                        shutil.copyfileobj(fh, self.wfile, 1 << 20)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET(head=True)

        def do_POST(self) -> None:  # noqa: N802
            route = self._route(server._lookup_post, server._post_missing())
            if route is None:
                return
            path, entry = route
            self.close_connection = True  # a refused body may be left unread
            if self.headers.get("Transfer-Encoding"):
                self._error(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not a chunked body")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
                return
            if length < 0 or length > entry.max_bytes:
                self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body of {length} bytes; at most {entry.max_bytes}")
                return
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != entry.content_type:
                self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {entry.content_type}")
                return
            body = self.rfile.read(length)
            if len(body) != length:
                self._error(HTTPStatus.BAD_REQUEST, "truncated body")
                return
            try:
                reply = entry.handler(body)
            except PostRejected as exc:
                self._error(exc.status, str(exc)[:500])
                return
            except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the server thread
                log.exception("POST %s handler failed", path)
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}")
                return
            self._send(HTTPStatus.OK, json.dumps(reply if reply is not None else {"ok": True}).encode(),
                       "application/json")

    return Handler
