"""`edgegan profile BUNDLE --target adb://SERIAL --benchmark-binary PATH`: TFLite's own Android
``benchmark_model`` as the runner, for phones that have no python.

edgegan pushes the binary (content-addressed, chmod 755) and each .tflite artifact, runs
``benchmark_model --graph=... --num_threads=N --warmup_runs=W --num_runs=R`` (with
``--min_secs=0 --warmup_min_secs=0`` so the counts are exact) and parses what it prints into the
same results record. The tool writes no outputs, so these rows have latency, init and the tool's
approximate memory footprint but no samples and no quality score (say so, never invent them).

The parser reads the tool's real log format (see tests/data/benchmark_model_*.log)::

    count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798
    Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, Inference (avg): 2.95034e+06
    Memory footprint delta from the start of the tool (MB): init=4.21094 overall=46.0859

with or without a logcat-style prefix (``INFO: ``, ``I tflite  : ``), and the newer count
lines' ``p5= median= p95=`` fields.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
import time
from pathlib import Path
from typing import Optional

from ..bundle import ArtifactRecord, sha256_file
from ..errors import ResultsError
from ..results import ProfileRow
from .errors import DeviceTimeoutError
from .profile import Profiler, _row_base, target_label

_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_PREFIX = r"^(?:[A-Z]+: |[VDIWEF] [\w.-]+\s*: )?"
_COUNT = re.compile(_PREFIX + r"count=(\d+)((?: \w+=" + _NUM + r")*)\s*$", re.M)
_SUMMARY = re.compile(_PREFIX + rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM}), "
                      rf"Warmup \(avg\): ({_NUM}), Inference \(avg\): ({_NUM})", re.M)
_MEMORY = re.compile(rf"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): "
                     rf"init=({_NUM}) overall=({_NUM})")
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})")
MAX_OUTPUT = 4 << 20


def parse_benchmark_model(text: str) -> dict:
    """The timed runs' statistics (ms), init / first inference (ms) and memory (MB) from
    benchmark_model's output (untrusted: ResultsError when the summary line is missing)."""
    text = text[:MAX_OUTPUT].replace("\r", "")
    summary = list(_SUMMARY.finditer(text))
    if not summary:
        tail = " | ".join(text.strip().splitlines()[-3:])[:300]
        raise ResultsError(f"benchmark_model printed no 'Inference timings in us' line (crashed or refused the "
                           f"model?): {tail or '(no output)'}")
    s = summary[-1]
    init_us, first_us, warm_us, avg_us = (float(s.group(i)) for i in range(1, 5))
    # the timed runs' line is the last "count=" line before the summary (the earlier one is the warm-up)
    counts = [m for m in _COUNT.finditer(text[:s.start()]) if "first=" in m.group(2)]
    stats: dict = {}
    if counts:
        c = counts[-1]
        stats = {k: float(v) for k, v in re.findall(r"(\w+)=(" + _NUM + ")", c.group(2))}
        stats["count"] = int(c.group(1))
    ms = {k: v / 1000.0 for k, v in stats.items() if k != "count"}
    latency = {"mean": avg_us / 1000.0, "std": ms.get("std"), "min": ms.get("min"), "max": ms.get("max"),
               "p50": ms.get("median"), "p95": ms.get("p95"), "p5": ms.get("p5"), "p90": None, "p99": None,
               "trimmed_mean": None}
    out = {"latency_ms": latency, "runs": stats.get("count"), "model_load_ms": init_us / 1000.0,
           "first_inference_ms": first_us / 1000.0, "warmup_avg_ms": warm_us / 1000.0}
    mem = _MEMORY.search(text)
    if mem:
        out["memory_init_mb"], out["memory_overall_mb"] = float(mem.group(1)), float(mem.group(2))
    peak = _PEAK.search(text)
    if peak:
        out["peak_memory_mb"] = float(peak.group(1))
    return out


def benchmark_argv(binary: str, graph: str, threads: int, warmup: int, runs: int) -> list:
    return [binary, f"--graph={graph}", f"--num_threads={threads}", f"--warmup_runs={warmup}",
            f"--num_runs={runs}", "--warmup_min_secs=0", "--min_secs=0"]


class BenchmarkModelProfiler(Profiler):
    """A :class:`Profiler` whose runner is benchmark_model on an adb target (module docstring)."""

    def connect(self) -> None:
        from .session import DeviceSession
        from .targets import open_target

        self.progress("connect", None, None)
        t = open_target(self.cfg.target, self.cfg.target_options)
        self.session = DeviceSession(t, self.cfg.target_options.workdir, "")
        self.info = t.device_info()
        self.remote_run = self.session.path("runs", self.run_id)
        t.mkdir(self.remote_run)
        local = Path(self.cfg.benchmark_binary or "")
        if not local.is_file():
            from ..errors import ConfigError

            raise ConfigError(f"--benchmark-binary {local}: not a file (TFLite's Android benchmark_model, e.g. "
                              "android_aarch64_benchmark_model)")
        data = local.read_bytes()
        self.binary = self.session.path("bin", f"benchmark_model-{hashlib.sha256(data).hexdigest()[:12]}")
        if t.size(self.binary) != len(data):
            t.mkdir(posixpath.dirname(self.binary))
            t.push(local, self.binary)
        t.checked(["chmod", "755", self.binary], "chmod benchmark_model")

    def one(self, item) -> ProfileRow:
        device = (self.info.hostname if self.info else "") or self.cfg.target
        if isinstance(item, str):
            return ProfileRow(device=device, target=target_label(self.cfg.target), format=item, status="failed",
                              reason="not in the bundle")
        rec: ArtifactRecord = item
        row = _row_base(rec, self.cfg.target, device)
        row.runtime = "tflite-benchmark_model"
        if rec.status == "failed" or rec.path is None:
            row.reason = f"export failed: {rec.reason}"
            return row
        if not rec.path.endswith(".tflite"):
            row.reason = "benchmark_model runs .tflite artifacts only (profile this format without --benchmark-binary)"
            return row
        t0 = time.monotonic()
        t = self.session.t
        local_art = self.bundle.artifact_path(rec)
        actual = sha256_file(local_art)
        if actual != rec.sha256:
            row.reason = f"{rec.path} does not match its sha256 in bundle.json: modified or corrupt; re-export"
            return row
        self.progress("push", rec.format, None)
        remote_art = self.session.path("artifacts", f"{actual}.tflite")
        if t.size(remote_art) != local_art.stat().st_size:
            t.mkdir(posixpath.dirname(remote_art))
            t.push(local_art, remote_art)
        self.progress("run", rec.format, None)
        argv = benchmark_argv(self.binary, remote_art, self.cfg.threads, self.cfg.warmup, self.cfg.runs)
        try:
            res = t.run(argv, timeout=self.cfg.timeout_s)
        except DeviceTimeoutError as exc:
            row.reason = str(exc)
            return row
        if res.exit_code != 0:
            row.reason = f"benchmark_model exited {res.exit_code}: {(res.stderr or res.stdout).strip()[-300:]}"
            return row
        try:
            parsed = parse_benchmark_model(res.stdout + "\n" + res.stderr)
        except ResultsError as exc:
            row.reason = str(exc)
            return row
        row.status = "ok"
        row.latency_ms, row.runs, row.warmup, row.threads = parsed["latency_ms"], parsed["runs"], self.cfg.warmup, \
            self.cfg.threads
        row.model_load_ms, row.first_inference_ms = parsed["model_load_ms"], parsed["first_inference_ms"]
        if "memory_overall_mb" in parsed or "peak_memory_mb" in parsed:
            row.peak_memory_mb = parsed.get("peak_memory_mb", parsed.get("memory_overall_mb"))
            row.memory_method = "benchmark_model (approximate, its own footprint included)"
        row.timer = "benchmark_model (its own statistics, us)"
        row.implementation = f"benchmark_model {Path(self.cfg.benchmark_binary or '').name}"
        row.artifact_sha256 = actual
        row.power = {"provenance": "unavailable", "reason": "not measured with --benchmark-binary"}
        row.quality = {"note": "benchmark_model writes no outputs: not scored (profile without --benchmark-binary "
                               "or with --runner browser to score samples)"}
        row.seconds = round(time.monotonic() - t0, 2)
        return row

    def per_op(self, rec: ArtifactRecord) -> Optional[dict]:
        return None
