"""The browser runner: a runtime adapter that runs an artifact in a web page and takes its
timings and outputs back over HTTP.

The runtime table for pages lives here (``WEB_RUNTIMES``), next to the page that implements
each entry (``page/bench.js``, one loader per runtime name). One run is a :class:`BrowserRun`:
edgegan serves, under a fresh random prefix ``/run/<token>/``, the page, its config, the
artifact and the stored inputs (raw float32, already in the artifact's layout); a *driver*
opens the page (headless Chromium here, a phone's browser over adb); the page POSTs the
outputs (raw float32, exactly ``count x output size x 4`` bytes or refused) and then a JSON
record (per-run times, user agent, runtime version), validated here as untrusted input and
turned into the runner's :class:`~edgegan.runner.edgegan_runner.Result`, so the profiler
scores it like any other run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import secrets
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ConfigError, DeviceError
from .server import RUNTIME_PREFIX, PostRejected, WebServer, npm_version

PAGE_DIR = Path(__file__).resolve().parent / "page"
MAX_RESULT_BYTES = 1 << 20
MAX_TEXT = 1000


class PageTimeoutError(DeviceError):
    """The page posted nothing in time (never opened, stuck, or the phone locked)."""


@dataclasses.dataclass(frozen=True)
class WebRuntime:
    """An in-browser runtime: the artifacts it runs and the npm package that provides it (its
    page loader is the function of the same name in page/bench.js)."""

    name: str
    suffixes: tuple
    npm: str
    engine: str
    description: str = ""


WEB_RUNTIMES: dict[str, WebRuntime] = {}


def register_web_runtime(rt: WebRuntime) -> WebRuntime:
    if rt.name in WEB_RUNTIMES:
        raise ValueError(f"web runtime {rt.name!r} registered twice")
    WEB_RUNTIMES[rt.name] = rt
    return rt


register_web_runtime(WebRuntime("onnxruntime-web", (".onnx",), "onnxruntime-web", "wasm (SIMD)",
                                "ONNX Runtime Web, WebAssembly CPU backend"))
register_web_runtime(WebRuntime("tflite-web", (".tflite",), "@tensorflow/tfjs-tflite", "wasm (SIMD, XNNPACK)",
                                "TFLite Web API (tfjs-tflite) on tfjs-core's CPU backend"))


def web_runtime_for(path: str) -> Optional[WebRuntime]:
    """The in-browser runtime for an artifact file, or None (e.g. .pte: no browser runtime)."""
    return next((rt for rt in WEB_RUNTIMES.values() if str(path).endswith(rt.suffixes)), None)


@dataclasses.dataclass
class BrowserJob:
    """One artifact to run in a page. ``inputs`` are the bundle's stored inputs (NCHW float32);
    ``output_shape`` is one sample's NCHW output shape (without the batch)."""

    artifact: Path
    format: str
    inputs: np.ndarray
    output_shape: list
    io: dict = dataclasses.field(default_factory=dict)
    warmup: int = 10
    runs: int = 50
    threads: int = 1

    def validate(self) -> None:
        if self.runs < 1 or self.warmup < 0 or self.threads < 1:
            raise ConfigError(f"browser job: runs >= 1, warmup >= 0, threads >= 1 (got {self.runs}, {self.warmup}, "
                              f"{self.threads})")
        if web_runtime_for(self.artifact.name) is None:
            raise ConfigError(f"no in-browser runtime runs {self.artifact.name}; the browser runner takes "
                              + ", ".join(s for rt in WEB_RUNTIMES.values() for s in rt.suffixes))


@dataclasses.dataclass
class PageResult:
    """What a page posted, validated: per-run ms, outputs (NCHW float32) and the page's facts."""

    runtime: str
    version: str
    threads: int
    cross_origin_isolated: bool
    user_agent: str
    times_ms: list
    first_inference_ms: float
    model_load_ms: float
    model_fetch_ms: float
    page_ms: float
    warmup: int
    samples: np.ndarray
    hardware_concurrency: Optional[int] = None


def _number(doc: dict, key: str, lo: float = 0.0, hi: float = 1e9) -> float:
    v = doc.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise PostRejected(f"{key} must be a number in [{lo}, {hi}], got {str(v)[:40]!r}")
    return float(v)


def _text(doc: dict, key: str) -> str:
    v = doc.get(key, "")
    if not isinstance(v, str) or len(v) > MAX_TEXT or any(ord(c) < 32 for c in v):
        raise PostRejected(f"{key} must be a printable string of at most {MAX_TEXT} characters")
    return v


class BrowserRun:
    """One artifact served to one page, and the page's answer (see the module docstring)."""

    def __init__(self, server: WebServer, job: BrowserJob) -> None:
        job.validate()
        self.server, self.job = server, job
        self.runtime = web_runtime_for(job.artifact.name)
        self.token = secrets.token_hex(16)
        self.prefix = f"/run/{self.token}/"
        self.done = threading.Event()
        self.error: Optional[str] = None
        self.result: Optional[PageResult] = None
        self._raw_samples: Optional[np.ndarray] = None
        self._lock = threading.Lock()
        x = np.asarray(job.inputs, np.float32)
        perm = job.io.get("input_perm")
        if perm:  # the page feeds the artifact's own layout: transpose here, once
            x = x.transpose(perm)
        self.count = int(x.shape[0])
        self.input_shape = [1, *map(int, x.shape[1:])]
        self.out_size = int(np.prod(job.output_shape))
        self.samples_bytes = self.count * self.out_size * 4
        server.add_runtime_files(self.runtime.name)
        p = self.prefix
        server.add_file(p + "index.html", PAGE_DIR / "bench.html")
        server.add_file(p + "bench.js", PAGE_DIR / "bench.js")
        server.add_file(p + "model" + job.artifact.suffix, job.artifact, "application/octet-stream")
        server.add_bytes(p + "inputs.bin", np.ascontiguousarray(x).tobytes(), "application/octet-stream")
        config = {"token": self.token, "runtime": self.runtime.name, "format": job.format,
                  "runtime_base": RUNTIME_PREFIX, "artifact": "model" + job.artifact.suffix, "inputs": "inputs.bin",
                  "input_shape": self.input_shape, "count": self.count, "warmup": job.warmup, "runs": job.runs,
                  "threads": job.threads, "post": {"samples": "samples", "result": "result", "error": "error"}}
        server.add_bytes(p + "config.json", json.dumps(config).encode(), "application/json")
        server.add_post(p + "samples", self._on_samples, self.samples_bytes, "application/octet-stream")
        server.add_post(p + "result", self._on_result, MAX_RESULT_BYTES, "application/json")
        server.add_post(p + "error", self._on_error, 4096, "application/json")

    @property
    def path(self) -> str:
        return self.prefix + "index.html"

    def url(self, host: Optional[str] = None) -> str:
        return self.server.url(self.path, host)

    # ------------------------------------------------------------------ POST handlers (untrusted)
    def _on_samples(self, body: bytes):
        if len(body) != self.samples_bytes:
            raise PostRejected(f"samples: {len(body)} bytes, expected {self.samples_bytes} "
                               f"({self.count} outputs x {self.out_size} float32)")
        with self._lock:
            if self.done.is_set() or self._raw_samples is not None:
                raise PostRejected("samples already received", 409)
            self._raw_samples = np.frombuffer(body, dtype="<f4").reshape(self.count, self.out_size).copy()
        return {"ok": True, "bytes": len(body)}

    def _on_result(self, body: bytes):
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise PostRejected("result: not UTF-8 JSON") from None
        if not isinstance(doc, dict):
            raise PostRejected("result: expected a JSON object")
        if doc.get("token") != self.token or doc.get("runtime") != self.runtime.name:
            raise PostRejected("result: token / runtime do not match this run", 403)
        times = doc.get("times_ms")
        if not isinstance(times, list) or len(times) != self.job.runs:
            raise PostRejected(f"result: times_ms must be a list of {self.job.runs} numbers")
        times = [_number({"t": t}, "t", 0.0, 3.6e6) for t in times]
        warmup = doc.get("warmup")
        if warmup != self.job.warmup:
            raise PostRejected(f"result: warmup {str(warmup)[:20]} is not the {self.job.warmup} asked for")
        threads = doc.get("threads")
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 256:
            raise PostRejected("result: threads must be an integer in 1..256")
        hc = doc.get("hardware_concurrency")
        dims = doc.get("output_dims")
        if not (isinstance(dims, list) and dims and all(isinstance(d, int) and not isinstance(d, bool) and 0 < d
                                                        for d in dims)):
            raise PostRejected("result: output_dims must be a list of positive integers")
        perm = self.job.io.get("output_perm")
        nchw = [dims[i] for i in perm] if perm and len(perm) == len(dims) else dims
        if nchw != [1, *self.job.output_shape]:
            raise PostRejected(f"result: output_dims {dims} (NCHW {nchw}) do not match the model's "
                               f"[1, {', '.join(map(str, self.job.output_shape))}]")
        with self._lock:
            if self._raw_samples is None:
                raise PostRejected("result: post the samples first", 409)
            if self.done.is_set():
                raise PostRejected("result already received", 409)
            samples = self._raw_samples.reshape(self.count, *dims[1:])
            if perm:
                samples = np.ascontiguousarray(samples.transpose([0, *[p for p in perm[1:]]]))
            self.result = PageResult(
                runtime=self.runtime.name, version=_text(doc, "version")[:200], threads=threads,
                cross_origin_isolated=doc.get("cross_origin_isolated") is True,
                user_agent=_text(doc, "user_agent"), times_ms=times,
                first_inference_ms=_number(doc, "first_inference_ms"), model_load_ms=_number(doc, "model_load_ms"),
                model_fetch_ms=_number(doc, "model_fetch_ms"), page_ms=_number(doc, "page_ms"), warmup=warmup,
                samples=samples.astype(np.float32, copy=False),
                hardware_concurrency=hc if isinstance(hc, int) and not isinstance(hc, bool) and 0 < hc < 4096 else None)
            self.done.set()
        return {"ok": True}

    def _on_error(self, body: bytes):
        try:
            doc = json.loads(body.decode("utf-8"))
            ok = isinstance(doc, dict) and doc.get("token") == self.token
        except (UnicodeDecodeError, ValueError):
            ok = False
        if not ok:
            raise PostRejected("error: not this run's", 403)
        msg = doc.get("message")
        with self._lock:
            if not self.done.is_set():
                self.error = "".join(c if c.isprintable() else " " for c in str(msg))[:500] or "unknown error"
                self.done.set()
        return {"ok": True}

    # ------------------------------------------------------------------ waiting
    def wait(self, timeout_s: float, pump=None) -> PageResult:
        """The page's validated result; DeviceError with the page's own message if it failed,
        or a timeout error naming the URL. ``pump(seconds)`` lets a driver process its events."""
        deadline = time.monotonic() + timeout_s
        while not self.done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                raise PageTimeoutError(f"the benchmark page {self.url()} posted no result within {timeout_s:.0f} s "
                                         "(is the browser open on it, the phone unlocked, the port reachable?); "
                                         "raise --timeout for a slow device")
            if pump is not None:
                pump(min(left, 0.2))
            else:
                self.done.wait(min(left, 0.2))
        if self.error is not None:
            raise DeviceError(f"the benchmark page failed: {self.error}")
        assert self.result is not None
        return self.result

    def close(self) -> None:
        self.server.remove_prefix(self.prefix)


def to_runner_result(job: BrowserJob, page: PageResult, emulator: Optional[str]) -> tuple:
    """(runner Result, samples.npy bytes): the page's numbers in the record every runner writes."""
    import io

    from ..runner.edgegan_runner import Result, latency_stats

    bio = io.BytesIO()
    np.save(bio, np.ascontiguousarray(page.samples, np.float32), allow_pickle=False)
    buf = bio.getvalue()
    rt = WEB_RUNTIMES[page.runtime]
    versions = {page.runtime: npm_version(rt.npm) or page.version, "user_agent": page.user_agent}
    if page.runtime == "tflite-web":
        versions["@tensorflow/tfjs-core"] = npm_version("@tensorflow/tfjs-core")
    res = Result(
        format=job.format, runtime=page.runtime,
        implementation=f"{rt.npm} {versions[page.runtime]} ({rt.engine}, {page.threads} thread"
                       f"{'s' if page.threads > 1 else ''})",
        artifact=job.artifact.name, artifact_sha256=hashlib.sha256(job.artifact.read_bytes()).hexdigest(),
        threads=page.threads, warmup=page.warmup, runs=len(page.times_ms), model_load_ms=page.model_load_ms,
        first_inference_ms=page.first_inference_ms, latency_ms=latency_stats(page.times_ms),
        samples="samples.npy", samples_shape=list(page.samples.shape), samples_sha256=hashlib.sha256(buf).hexdigest(),
        timer="performance.now() in the page" + (" (cross-origin isolated)" if page.cross_origin_isolated else ""),
        memory=None, power={"provenance": "unavailable", "avg_w": None, "idle_w": None, "net_w": None,
                            "energy_mj_per_inference": None, "reason": "the browser runner does not read power"},
        thermal=None, versions=versions, emulator=emulator, complete=True)
    return res, buf


def page_extras(page: PageResult) -> dict:
    """Browser facts for the row (kept beside the runner fields): page load, fetch, isolation."""
    return {"page_load_ms": round(page.page_ms, 2), "model_fetch_ms": round(page.model_fetch_ms, 2),
            "cross_origin_isolated": page.cross_origin_isolated, "user_agent": page.user_agent,
            "hardware_concurrency": page.hardware_concurrency}
