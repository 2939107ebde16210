"""What one sweep job does, wherever it runs (in this process or on a Ray worker).

A job works in a temporary folder next to its final one and renames it into place as its last
step, with ``result.json`` inside: a job dir that exists is a finished job (what resume skips),
and a worker killed mid-job leaves only a temporary folder behind. Each attempt first writes
``attempts/<key>.<n>.json`` (pid, host, start time), so retries and resumes can be counted."""
from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import EdgeganError
from .graph import Job, job_dir

log = logging.getLogger(__name__)
RESULT = "result.json"


def finished_result(out: Path, key: str) -> dict | None:
    """The stored result of a finished job, or None."""
    path = job_dir(out, key) / RESULT
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _mark_attempt(out: Path, key: str) -> int:
    d = Path(out) / "attempts"
    d.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        try:
            fd = os.open(d / f"{key}.{n}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            n += 1
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "start": time.time()}, fh)
        return n


def attempts(out: Path, key: str) -> int:
    d = Path(out) / "attempts"
    return len(list(d.glob(f"{key}.*.json"))) if d.is_dir() else 0


def _export(job: Job, work: Path, deps: dict) -> dict:
    import edgegan
    from ..compress import PipelineConfig

    m, x = job.params["model"], job.params["export"]
    t0 = time.perf_counter()
    base = model = edgegan.load_model(m["spec"], checkpoint=m["checkpoint"], config=m["config"] or None)
    if job.params["pipeline"]:
        model = edgegan.compress(model, PipelineConfig.from_dict(job.params["pipeline"]))
    from ..compress import storage_stats

    stats = storage_stats(model.module, model.compression)  # what the compression saves, before any format
    t1 = time.perf_counter()
    compress_s = round(t1 - t0, 3)
    quality = None
    if job.params.get("quality"):
        from .quality import measure

        quality = measure(base, model, job.params["quality"], m, work)
        quality["quality_s"] = round(time.perf_counter() - t1, 3)
        t1 = time.perf_counter()
    bundle = edgegan.export(model, out=work / "bundle", formats=job.params["formats"], n_inputs=x["n_inputs"],
                            input_seed=x["input_seed"], calibration=x["calibration"],
                            calibration_seed=x["calibration_seed"], threads=x["threads"],
                            latency_rounds=x["latency_rounds"], latency_runs=x["latency_runs"])
    artifacts = {}
    for r in bundle.artifact_records():
        artifacts[r.format] = {"status": r.status, "reason": r.reason, "bytes": r.bytes,
                               "fidelity_psnr_db": (r.fidelity or {}).get("psnr_db")}
        if quality is not None and r.status != "failed" and r.path:  # the post-training view's gzip column
            data = bundle.artifact_path(r).read_bytes()
            artifacts[r.format]["gzip_bytes"] = len(gzip.compress(data, compresslevel=9, mtime=0))
    model_stats = {k: stats[k] for k in ("params", "float_bytes", "packed_bytes", "weight_sparsity")}
    out = {"bundle": "bundle", "artifacts": artifacts, "model_stats": model_stats, "compress_s": compress_s,
           "export_s": round(time.perf_counter() - t1, 3)}
    if quality is not None:
        model_stats["int8_container_bytes"] = stats["int8_container_bytes"]
        out["quality"] = {**quality, "onnx_exporter": (bundle.manifest.export or {}).get("exporter")}
    return out


def _profile(job: Job, work: Path, deps: dict) -> dict:
    import edgegan

    (exp_key,) = job.deps
    exp = deps[exp_key]
    bundle = Path(exp["dir"]) / exp["output"]["bundle"]
    fmts = [f for f in job.params["formats"] if exp["output"]["artifacts"].get(f, {}).get("status") in ("ok", "degraded")]
    if not fmts:
        return {"profile": None, "rows": {}, "bundle": str(bundle)}
    t, r = job.params["target"], job.params["runs"]
    opts = {k: t[k] for k in ("identity", "known_hosts", "python", "workdir") if t.get(k)}
    res = edgegan.profile(bundle, t["url"], out=work / "profile", formats=fmts, runs=r["runs"], warmup=r["warmup"],
                          threads=r["threads"], memory=r["memory"], timeout_s=r["timeout_s"], compare=False,
                          target_options=opts)
    rows = {}
    for row in res.rows:
        lat = row.latency_ms or {}
        rows[row.format] = {"status": row.status, "reason": row.reason, "p50_ms": lat.get("p50"),
                            "p90_ms": lat.get("p90"), "mean_ms": lat.get("mean"), "runtime": row.runtime,
                            "peak_memory_mb": row.peak_memory_mb, "device": row.device}
    return {"profile": "profile", "rows": rows, "arch": res.device.get("arch"), "bundle": str(bundle)}


def _compare(job: Job, work: Path, deps: dict) -> dict:
    import edgegan
    from ..api.results import ProfileResults
    from ..bundle import Bundle

    (prof_key,) = job.deps
    prof = deps[prof_key]
    if not prof["output"]["profile"]:
        return {"metrics": {}}
    bundle = Bundle.load(prof["output"]["bundle"])
    pdir = Path(prof["dir"]) / prof["output"]["profile"]
    results = ProfileResults(pdir, json.loads((pdir / "results.json").read_text()), bundle)
    out = {}
    for fmt in job.params["formats"]:
        if prof["output"]["rows"].get(fmt, {}).get("status") not in ("ok", "degraded"):
            continue
        try:
            c = edgegan.compare(bundle, results[fmt])
            values = {**(c.paired or {}), **c.metrics}
            out[fmt] = {m: values.get(m) for m in job.params["metrics"]}
        except EdgeganError as exc:
            out[fmt] = {"error": str(exc)}
    return {"metrics": out}


STEPS = {"export": _export, "profile": _profile, "compare": _compare}


def run_job(job_dict: dict, out: str, deps: dict[str, dict]) -> dict:
    """Run one job; never raises for the job's own failure (that is a result with a reason).
    ``deps``: the finished results of the jobs this one depends on, by key."""
    job = Job.from_dict(job_dict)
    out_p = Path(out)
    done = finished_result(out_p, job.key)
    if done is not None:  # finished by an earlier attempt whose report was lost
        return done
    attempt = _mark_attempt(out_p, job.key)
    final = job_dir(out_p, job.key)
    work = final.with_name(f"{final.name}.tmp-{os.getpid()}-{attempt}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"key": job.key, "kind": job.kind, "deps": job.deps, "attempt": attempt, "started": time.time(),
                              "host": socket.gethostname(), "pid": os.getpid(), "dir": str(final)}
    try:
        result.update(status="ok", reason=None, output=STEPS[job.kind](job, work, deps))
    except EdgeganError as exc:
        result.update(status="failed", reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__, output=None)
    except Exception as exc:  # noqa: BLE001 - a crashed job is a failure row, never a lost sweep
        log.debug("job %s crashed:\n%s", job.key, traceback.format_exc())
        result.update(status="failed", reason=f"{type(exc).__name__}: {exc}".splitlines()[0], output=None)
    result["seconds"], result["finished"] = round(time.perf_counter() - t0, 3), time.time()
    if result["status"] != "ok":
        shutil.rmtree(work, ignore_errors=True)
        return result  # failures are not cached: a resume tries them again
    (work / RESULT).write_text(json.dumps(result, indent=2, default=str))
    try:
        os.rename(work, final)
    except OSError:  # another attempt finished first: keep its result
        shutil.rmtree(work, ignore_errors=True)
        return finished_result(out_p, job.key) or result
    return result
