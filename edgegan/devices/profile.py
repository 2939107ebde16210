"""`edgegan profile` as a library call: push a bundle's artifacts + the runner to a target,
run each format there, pull results + samples back, and score the device's outputs.

One format failing (no runtime on the device, runner crash, bad result) is a ``failed`` row
with the reason, never an abort. A lost connection is retried once (reconnect, rerun that
format); if the device stays unreachable the rows finished so far are written with
``complete: false`` and a DeviceError says how to resume — a half-run is never reported as
complete.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import posixpath
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import __version__
from ..bundle import INPUTS, ArtifactRecord, Bundle, sha256_file
from ..config import JsonConfig
from ..errors import BundleError, ConfigError, DeviceError, EdgeganError, OutputError, ResultsError
from ..util.npy import load_npy
from ..results import BELOW_BUNDLE_THRESHOLD, ArtifactRef, ProfileRow, ProfileRun, ResultsLayout, below_threshold
from .results_folder import check_earlier_run, check_formats, clear_earlier_run
from .errors import DeviceConnectionError, DeviceDiskFullError, DeviceTimeoutError, UnsafePathError
from .session import DeviceInfo, DeviceSession
from .targets import open_target
from .transport import TargetOptions, stderr_tail
from ..runner.edgegan_runner import ExitCode, Job, PowerSettings, Result, RunnerError

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, Optional[str], Optional[dict]], None]
MAX_THREADS = 256
# the runner's Result fields a profile row carries over as they are
MEASUREMENTS = ("runtime", "implementation", "latency_ms", "warmup", "runs", "threads", "model_load_ms",
                "first_inference_ms", "peak_memory_mb", "peak_memory_range_mb", "memory_method", "memory", "power",
                "thermal", "versions", "emulator", "timer", "runner_version", "artifact_sha256")
MAX_RUNS = 1_000_000
RUNNERS = ("python", "browser")


@dataclasses.dataclass
class ProfileConfig(JsonConfig):
    """Everything that determines a profile run (its settings are written into results.json)."""

    bundle: str
    target: str = "local"
    formats: Optional[list[str]] = None
    runs: int = 50
    warmup: int = 10
    threads: int = 2
    out: Optional[str] = None
    memory: bool = True
    power_probe: str = "auto"
    power_baseline_s: float = 1.0
    power_min_s: float = 1.0
    timeout_s: float = 900.0
    resume: bool = False
    force: bool = False  # replace an earlier run in ``out`` (its per-format folders are cleared first)
    compare: bool = True
    vs_host: Optional[bool] = None
    keep_remote: bool = False
    per_op: bool = False  # .pte artifacts: ops ranked by time (ETDump, captured on this host), per_op.json
    # who runs the artifact: the python runner on the target, or a web page (`--target browser` is a
    # local headless Chromium; `--target adb://SERIAL --runner browser` the phone's browser)
    runner: str = "python"
    browser_device: str = "Pixel 7"  # Playwright device profile for --target browser, or "desktop"
    benchmark_binary: Optional[str] = None  # adb targets: TFLite's Android benchmark_model, pushed and run
    target_options: TargetOptions = dataclasses.field(default_factory=TargetOptions)

    def validate(self) -> None:
        if self.runs < 1:
            raise ConfigError(f"ProfileConfig.runs must be >= 1, got {self.runs}", field="runs")
        if self.warmup < 0:
            raise ConfigError(f"ProfileConfig.warmup must be >= 0, got {self.warmup}", field="warmup")
        if not 1 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"ProfileConfig.threads must be in 1..{MAX_THREADS}, got {self.threads:,}", field="threads")
        if self.runs > MAX_RUNS or self.warmup > MAX_RUNS:
            raise ConfigError(f"ProfileConfig.runs / warmup must be <= {MAX_RUNS:,}, got {self.runs:,} / {self.warmup:,}",
                              field="runs")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ConfigError(f"ProfileConfig.timeout_s must be a number of seconds > 0, got {self.timeout_s}",
                              field="timeout_s")
        seconds = (self.power_baseline_s, self.power_min_s)
        if not all(math.isfinite(v) and v >= 0 for v in seconds):
            raise ConfigError(f"power baseline / minimum seconds must be finite and >= 0, got {seconds}",
                              field="power_baseline_s")
        if self.target == "browser" and self.runner == "python":
            self.runner = "browser"
        if self.runner not in RUNNERS:
            raise ConfigError(f"ProfileConfig.runner {self.runner!r}: choose {', '.join(RUNNERS)}", field="runner")
        if self.runner == "browser" and not (self.target == "browser" or self.target.startswith("adb://")):
            raise ConfigError(f"--runner browser needs --target browser (local headless Chromium) or adb://SERIAL "
                              f"(the phone's browser), not {self.target!r}", field="runner")
        if self.benchmark_binary is not None and (not self.target.startswith("adb://") or self.runner != "python"):
            raise ConfigError("--benchmark-binary runs TFLite's benchmark_model on an adb:// target (no --runner "
                              "browser)", field="benchmark_binary")
        from .power import probe_names

        if self.power_probe not in ("auto", "none", *probe_names()):
            raise ConfigError(f"ProfileConfig.power_probe {self.power_probe!r} is not a probe; choose auto, none, "
                              f"{', '.join(probe_names())}", field="power_probe")

    def out_dir(self, bundle: Bundle) -> Path:
        if self.out:
            return Path(self.out)
        return Path("results") / f"{safe_name(bundle.manifest.model.name)}-{safe_name(self.target.split('://')[-1])}"


def safe_name(text: str) -> str:
    """One path component from a name that came from a file (a manifest's model name, a target):
    no separators, no leading dots, bounded length."""
    slug = "".join(c if c.isalnum() or c in "-._" else "_" for c in text).lstrip(".")[:80]
    return slug or "model"


def _check_out(out: Path) -> None:
    """Refuse an --out that cannot become the results folder, before anything is created or connected."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"--out '{out}' is {'a symlink' if out.is_symlink() else 'a file'}, not a folder; "
                          "choose another --out")
    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise OutputError(f"--out '{out}': '{existing}' is a file, not a folder; choose another --out")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"--out '{out}': '{existing}' is not writable; choose another --out or fix its permissions")


def target_label(url: str) -> str:
    """The target URL without anything secret-looking (there is none today, but keep it so)."""
    return url.split("?", 1)[0]


def _row_base(rec: ArtifactRecord, target: str, device: str) -> ProfileRow:
    return ProfileRow(device=device, target=target_label(target), format=rec.format, status="failed",
                      runtime=rec.runtime, artifact=ArtifactRef(path=rec.path, sha256=rec.sha256, bytes=rec.bytes))


def start_row(bundle: Bundle, target: str, device: str, item) -> tuple[ProfileRow, Optional[ArtifactRecord]]:
    """The row for one requested format, and the record to run, or None when the row is already
    final (a format not in the bundle, or one whose export failed)."""
    if isinstance(item, str):
        have = ", ".join(r.format for r in bundle.artifact_records())
        return ProfileRow(device=device, target=target_label(target), format=item, status="failed",
                          reason=f"not in the bundle (it has: {have}); re-export with --formats {item}"), None
    row = _row_base(item, target, device)
    if item.status == "failed" or item.path is None:
        row.reason = f"export failed: {item.reason}"
        return row, None
    return row, item


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def vs_host_outputs(bundle: Bundle, rec: ArtifactRecord, samples: np.ndarray) -> dict:
    """The device's outputs against this host's for the same artifact and inputs."""
    from ..verify.host import run_artifact

    try:
        host = run_artifact(bundle.artifact_path(rec), rec.format, rec.io, bundle.inputs(), threads=1)
    except (RuntimeError, EdgeganError, ImportError) as exc:
        return {"available": False, "reason": f"cannot run {rec.format} on this host: {str(exc)[:200]}"}
    if host.shape != samples.shape:
        return {"available": True, "exact": False, "reason": f"shape {list(samples.shape)} vs host {list(host.shape)}"}
    diff = np.abs(host.astype(np.float64) - samples.astype(np.float64))
    return {"available": True, "exact": bool(np.array_equal(host, samples)), "max_abs_diff": float(diff.max()),
            "differing_elements": int((diff > 0).sum()), "elements": int(diff.size)}


def distribution_quality(reference: np.ndarray, samples: np.ndarray) -> dict:
    """LSH / kNN precision-recall + density/coverage of device samples vs the float samples.
    The single call site into edgegan.metrics (the `compare` verb's API)."""
    from ..metrics.compare import compare_samples

    try:
        res = compare_samples(reference, samples, paired=False)
    except (EdgeganError, ImportError, ValueError) as exc:
        return {"distribution_error": str(exc)[:300]}
    q = {k: _finite(float(v)) if v is not None else None for k, v in res["quality"].items() if k != "psnr_db"}
    q["features"] = res.get("features", {}).get("name")
    return q


class Profiler:
    """One profile run (use :func:`run_profile`)."""

    def __init__(self, cfg: ProfileConfig, progress: ProgressFn | None = None) -> None:
        self.cfg = cfg
        self.progress = progress or (lambda stage, fmt, row: None)
        self.bundle = Bundle.load(cfg.bundle)
        self.out = cfg.out_dir(self.bundle)
        _check_out(self.out)
        check_formats(cfg.formats, [r.format for r in self.bundle.artifact_records()])
        check_earlier_run(self.out, cfg.force, cfg.resume)
        self.run_id = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.manifest_sha256 = sha256_file(self.bundle.file("bundle.json"))  # once; results.json is saved per row
        self.rows: list[ProfileRow] = []
        self.session: Optional[DeviceSession] = None
        self.info: Optional[DeviceInfo] = None
        self.vs_host = cfg.vs_host if cfg.vs_host is not None else cfg.target != "local"
        from ..verify.host import FidelityThresholds

        try:
            self.thresholds = FidelityThresholds.from_dict(self.bundle.manifest.thresholds or {})
        except ConfigError as exc:
            raise BundleError(f"bundle.json thresholds are invalid ({exc}); re-export the bundle") from None

    # ------------------------------------------------------------------ selection
    def selected(self) -> list[ArtifactRecord | str]:
        records = {r.format: r for r in self.bundle.artifact_records()}
        wanted = self.cfg.formats or list(records)
        return [records.get(f, f) for f in dict.fromkeys(wanted)]

    def previous_rows(self) -> dict[str, ProfileRow]:
        p = ResultsLayout(self.out).results
        if not (self.cfg.resume and p.is_file()):
            return {}
        try:
            doc = ProfileRun.load(p)
        except ResultsError as exc:
            log.warning("not resuming from %s: %s", p, exc)
            return {}
        if doc.target != target_label(self.cfg.target):
            return {}
        return {r.format: r for r in doc.results if r.measured}

    # ------------------------------------------------------------------ the run
    def document(self, complete: bool) -> ProfileRun:
        return ProfileRun(
            edgegan=__version__, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            complete=complete, run_id=self.run_id, target=target_label(self.cfg.target),
            device=self.info.to_dict() if self.info else None,
            bundle={"path": str(Path(self.cfg.bundle).resolve()), "model": self.bundle.manifest.model.name,
                    "manifest_sha256": self.manifest_sha256,
                    "inputs": int(self.bundle.manifest.inputs.count or 0),
                    "thresholds": dict(self.bundle.manifest.thresholds)},
            settings={"runs": self.cfg.runs, "warmup": self.cfg.warmup, "threads": self.cfg.threads,
                      "memory": self.cfg.memory, "power_probe": self.cfg.power_probe,
                      "power_baseline_s": self.cfg.power_baseline_s, "power_min_s": self.cfg.power_min_s},
            results=list(self.rows),
        )

    def save(self, complete: bool, html: bool = False) -> dict:
        """Write the results folder; returns results.json's content (``ProfileRun.to_dict()``).
        ``html``: also report.html (once, when the run ends; not after every format)."""
        from ..reports.profile_report import write_all

        doc = self.document(complete).to_dict()
        write_all(doc, self.out, self.bundle, html=html)
        return doc

    def connect(self) -> None:
        opts = self.cfg.target_options
        self.progress("connect", None, None)
        t = open_target(self.cfg.target, opts)
        self.session = DeviceSession(t, opts.workdir, opts.python)
        self.info = self.session.info()
        self.remote_run = self.session.path("runs", self.run_id)
        self.session.t.mkdir(self.remote_run)
        self.session.t.push(self.bundle.inputs_path(), posixpath.join(self.remote_run, INPUTS))

    # errors of connect() that a reconnect reports as "failed" (False) instead of raising
    reconnect_errors: tuple[type[Exception], ...] = (DeviceError,)

    def disconnect(self) -> None:
        """Drop the (lost) connection before :meth:`reconnect` opens a new one; subclasses that
        connect another way override it."""
        try:
            if self.session:
                self.session.t.close()
        except Exception:  # noqa: BLE001 - the old connection is gone anyway
            pass

    def reconnect(self) -> bool:
        self.disconnect()
        try:
            self.connect()
            return True
        except self.reconnect_errors as exc:
            log.warning("reconnect to %s failed: %s", self.cfg.target, exc)
            return False

    def run(self) -> dict:
        previous = self.previous_rows()
        items = self.selected()
        self.connect()  # a refused target leaves no results folder behind
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.cleanup()
            raise OutputError(f"cannot create results folder '{self.out}' ({exc.strerror}); choose a writable --out") from None
        clear_earlier_run(self.out, keep={f for f, row in previous.items() if any(
            isinstance(i, ArtifactRecord) and i.format == f and i.sha256 == row.artifact.sha256 for i in items)})
        try:
            for item in items:
                fmt = item if isinstance(item, str) else item.format
                if fmt in previous and isinstance(item, ArtifactRecord) and previous[fmt].artifact.sha256 == item.sha256:
                    self.rows.append(dataclasses.replace(previous[fmt], resumed=True))
                    self.progress("done", fmt, self.rows[-1])
                    continue
                row = self.one_with_retry(item)
                if self.cfg.per_op and isinstance(item, ArtifactRecord):
                    row.per_op = self.per_op(item)
                self.rows.append(row)
                self.progress("done", fmt, row)
                self.save(complete=False)  # each finished row is on disk before the next starts
        except DeviceConnectionError as exc:
            self.save(complete=False, html=True)
            done = sum(r.ok for r in self.rows)
            raise DeviceConnectionError(
                f"{exc} — {done} of {len(items)} formats finished, saved in {ResultsLayout(self.out).results} "
                "marked complete=false; fix the connection and rerun with --resume") from None
        finally:
            self.cleanup()
        return self.save(complete=True, html=True)

    def cleanup(self) -> None:
        if self.session is None:
            return
        try:
            if not self.cfg.keep_remote and getattr(self, "remote_run", None):
                self.session.t.remove(self.remote_run)
        except EdgeganError as exc:
            log.info("could not remove %s on the device: %s", getattr(self, "remote_run", "?"), exc)
        finally:
            self.session.t.close()

    def one_with_retry(self, item) -> ProfileRow:
        try:
            return self.one(item)
        except DeviceConnectionError as exc:
            fmt = item if isinstance(item, str) else item.format
            log.warning("connection lost during %s (%s); reconnecting to resume", fmt, exc)
            if not self.reconnect():
                row = _row_base(item, self.cfg.target, "") if isinstance(item, ArtifactRecord) else ProfileRow(format=fmt)
                row.status, row.reason = "incomplete", f"connection lost: {exc}"
                self.rows.append(row)
                raise
            return self.one(item)

    # ------------------------------------------------------------------ one format
    def one(self, item) -> ProfileRow:
        assert self.session is not None and self.info is not None
        row, rec = start_row(self.bundle, self.cfg.target, self.info.hostname or self.cfg.target, item)
        if rec is None:
            return row
        missing = self.info.has_runtime_for(rec.path)
        if missing:
            row.reason = missing
            return row
        t0 = time.monotonic()
        s, t = self.session, self.session.t
        local_art = self.bundle.artifact_path(rec)
        actual = sha256_file(local_art)
        if actual != rec.sha256:  # never run (or cache on the device) a file the export did not make
            row.reason = (f"{rec.path} does not match its sha256 in bundle.json (file {actual[:12]}…, manifest "
                             f"{(rec.sha256 or 'none')[:12]}…): modified or corrupt; re-export the bundle")
            return row
        self.progress("push", rec.format, None)
        # content-addressed on the device by the file's full hash, so a cached copy is this exact file
        remote_art = s.path("artifacts", f"{actual}{posixpath.splitext(rec.path)[1]}")
        if t.size(remote_art) != local_art.stat().st_size:
            t.mkdir(posixpath.dirname(remote_art))
            t.push(local_art, remote_art)
        rdir = posixpath.join(self.remote_run, rec.format)
        job = Job(artifact=remote_art, format=rec.format, io=rec.io, inputs=posixpath.join(self.remote_run, INPUTS),
                  warmup=self.cfg.warmup, runs=self.cfg.runs, threads=self.cfg.threads, out=rdir,
                  memory=self.cfg.memory, memory_timeout_s=self.cfg.timeout_s, timeout_s=self.cfg.timeout_s,
                  power=PowerSettings(probe=self.cfg.power_probe, baseline_s=self.cfg.power_baseline_s,
                                      min_s=self.cfg.power_min_s), artifact_sha256=actual).to_dict()
        t.mkdir(rdir)
        with tempfile.TemporaryDirectory(prefix="edgegan-job-") as tmp:
            jp = Path(tmp) / "job.json"
            jp.write_text(json.dumps(job, indent=1))
            t.push(jp, posixpath.join(rdir, "job.json"))
        self.progress("run", rec.format, None)
        try:
            # the runner stops itself at timeout_s; the grace covers a runner too stuck to do so
            res = t.run(s.runner_argv(posixpath.join(rdir, "job.json")), timeout=self.cfg.timeout_s + 120)
        except DeviceTimeoutError as exc:
            row.reason = str(exc)
            return row
        if res.exit_code != ExitCode.OK:
            row.reason = self._runner_failure(res.exit_code, res.stderr)
            if res.exit_code == ExitCode.OUTPUT_ERROR and "disk full" in res.stderr:
                row.disk_full = True
            return row
        self.progress("pull", rec.format, None)
        layout = ResultsLayout(self.out)
        local_dir = layout.format_dir(rec.format)
        local_dir.mkdir(parents=True, exist_ok=True)
        for stale in (ResultsLayout.DEVICE_RESULTS, ResultsLayout.SAMPLES):
            (local_dir / stale).unlink(missing_ok=True)
        try:
            rj = t.pull(posixpath.join(rdir, "results.json"), local_dir, ResultsLayout.DEVICE_RESULTS)
            result = Result.from_dict(json.loads(rj.read_text()))  # device output is untrusted
            sp = t.pull(posixpath.join(rdir, result.samples), local_dir, result.samples)
        except UnsafePathError as exc:
            row.reason = str(exc)
            return row
        except (json.JSONDecodeError, DeviceError, RunnerError) as exc:
            if isinstance(exc, (DeviceConnectionError, DeviceDiskFullError)):
                raise
            row.reason = f"could not read the device's results: {str(exc)[:300]}"
            return row
        if not result.complete or hashlib.sha256(sp.read_bytes()).hexdigest() != result.samples_sha256:
            row.reason = "the device's result is incomplete (results.json not complete or samples.npy hash mismatch)"
            return row
        if result.artifact_sha256 not in (None, actual):
            row.reason = (f"the device ran a different file than {rec.path} (sha256 {result.artifact_sha256[:12]}… "
                             f"vs {actual[:12]}…); its artifact cache may be tampered: remove {posixpath.dirname(remote_art)}")
            return row
        if sp.name != ResultsLayout.SAMPLES:
            sp = sp.rename(layout.samples(rec.format))
        return self.score(row, rec, result, sp, t0)

    def score(self, row: ProfileRow, rec: ArtifactRecord, result: Result, sp: Path, t0: float) -> ProfileRow:
        """Check the device's samples file (untrusted), copy the runner's measurements onto the row
        and score the samples; the one path every runner (python, browser page) ends in."""
        self.progress("compare", rec.format, None)
        try:
            samples = load_npy(sp, "device samples", ResultsError, max_bytes=self._max_samples_bytes())
        except ResultsError as exc:  # device output is untrusted: a bad file is this row's failure
            row.reason = str(exc)[:300]
            return row
        expected = [int(self.bundle.manifest.inputs.count or 0), *self.bundle.manifest.output.get("shape", [])]
        if list(samples.shape) != expected:
            row.reason = f"the device returned samples of shape {list(samples.shape)}, expected {expected}"
            return row
        if not np.issubdtype(samples.dtype, np.floating) or not np.isfinite(samples).all():
            row.reason = f"the device's outputs are not finite floats ({samples.dtype}, NaN/inf present)"
            return row
        for key in MEASUREMENTS:
            setattr(row, key, getattr(result, key))
        row.samples = ResultsLayout.samples_rel(rec.format)
        row.quality = self._quality(rec, samples)
        row.status = "ok"
        below = below_threshold(row.quality.get("psnr_db"), self.thresholds.ok_psnr_db)  # as in export
        if below:
            row.status, row.reason = "degraded", below + BELOW_BUNDLE_THRESHOLD
        row.seconds = round(time.monotonic() - t0, 2)
        return row

    def per_op(self, rec: ArtifactRecord) -> Optional[dict]:
        """Per-op profile of a .pte artifact, written next to its results; None for other runtimes.
        Captured on this host whatever the target (see :mod:`edgegan.devices.per_op`)."""
        from ..runner.edgegan_runner import RunnerError, runtime_for
        from .per_op import PER_OP_RUNTIMES, profile_pte

        if rec.status == "failed" or rec.path is None:
            return None
        try:
            if runtime_for(rec.path).name not in PER_OP_RUNTIMES:
                return None
        except RunnerError:
            return None
        layout = ResultsLayout(self.out)
        try:
            x = self.bundle.inputs()[:1]
            perm = (rec.io or {}).get("input_perm")
            x = x.transpose(perm) if perm else x
            prof = profile_pte(self.bundle.artifact_path(rec), x, rec.format, runs=self.cfg.runs, warmup=self.cfg.warmup,
                               threads=self.cfg.threads, keep=layout.format_dir(rec.format), sha256=rec.sha256,
                               timeout_s=self.cfg.timeout_s)
        except EdgeganError as exc:
            return {"reason": str(exc)[:300]}
        prof.save(layout.per_op(rec.format))
        here = self.cfg.target == "local"
        note = "" if here else (f"per-op times are this host's ({prof.host.split()[0]}), not the device's: the ETDump "
                                "capture needs the full executorch package (pybindings + torch) on the machine "
                                "that runs it, so it runs here")
        return {"file": ResultsLayout.per_op_rel(rec.format), "captured_on": "host", "note": note,
                "execute_ms": prof.execute_ms,
                "top": [{"op": o.op, "kind": o.kind, "count": o.count, "total_ms": o.total_ms} for o in prof.top(5)]}

    def _max_samples_bytes(self) -> int:
        """Samples are one output per stored input: a file claiming more is refused unread."""
        ref = self.bundle.file(self.bundle.manifest.reference.file)
        return max(ref.stat().st_size * 2, 1 << 20)

    @staticmethod
    def _runner_failure(code: int, stderr: str) -> str:
        tail = stderr_tail(stderr) or "(no stderr)"
        if code == ExitCode.USAGE:
            return f"the runner rejected the job (runner/host version mismatch?): {tail}"
        if code == -1:
            return f"runner crashed on the device (killed by a signal): {tail}"
        if code < 0 or code > 128:
            sig = -code if code < 0 else code - 128
            return f"runner crashed on the device (signal {sig}): {tail}"
        return f"runner exited {code}: {tail}"

    def _quality(self, rec: ArtifactRecord, samples: np.ndarray) -> dict:
        from ..verify.host import fidelity

        ref = self.bundle.reference()
        if samples.shape != ref.shape:
            return {"error": f"device samples {list(samples.shape)} vs reference {list(ref.shape)}"}
        q = fidelity(samples, ref, self.bundle.manifest.output_range().peak)
        q["vs"] = "float reference (bundle reference.npy)"
        if self.cfg.compare:
            q.update(distribution_quality(ref, samples))
        if self.vs_host:
            q["vs_host"] = vs_host_outputs(self.bundle, rec, samples)
        return q


# profilers that run a bundle another way, by name ("module:Class"; they subclass Profiler, so
# they are looked up rather than imported here)
PROFILER_KINDS = {
    "browser": "edgegan.devices.browser:BrowserProfiler",                      # the page in a browser
    "benchmark-binary": "edgegan.devices.benchmark_model:BenchmarkModelProfiler",  # TFLite's benchmark_model
}


def _profiler_class(kind: str) -> type:
    import importlib

    module, name = PROFILER_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def run_profile(cfg: ProfileConfig, progress: ProgressFn | None = None) -> tuple[Path, dict]:
    """Profile ``cfg.bundle`` on ``cfg.target``; returns (output dir, results document)."""
    kind = "browser" if cfg.runner == "browser" else "benchmark-binary" if cfg.benchmark_binary else None
    cls = _profiler_class(kind) if kind else Profiler
    p = cls(cfg, progress)
    doc = p.run()
    return p.out, doc
