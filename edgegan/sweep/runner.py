"""Run a sweep's job graph: in this process one job at a time (``executor="sequential"``) or
on Ray (the default; ``ray.init()`` locally, or an existing cluster by address).

On Ray every physical device is a custom resource of capacity 1 (:func:`graph.slot_resource`):
profile jobs ask for it, so a board runs one measurement at a time and its latencies are not
disturbed by a second run, while export and compare jobs (CPU-bound) take one CPU each and
spread over the workers. Ray retries a job whose worker process died (``max_retries``); a
job's own failure is a result with a reason, never an exception that ends the sweep."""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Callable, Optional

from ..errors import ConfigError, MissingDependencyError
from .graph import Job, expand, slot_resource
from .jobs import finished_result, run_job
from .spec import SweepSpec
from .table import build_rows, write_table

log = logging.getLogger(__name__)
MAX_RETRIES = 3  # worker deaths survived per job


@dataclasses.dataclass
class RayOptions:
    """Where and how big: ``address`` None = a local Ray started here (and stopped after)."""

    address: Optional[str] = None
    num_cpus: int = 2
    object_store_mb: int = 200


@dataclasses.dataclass
class SweepResult:
    out: Path
    rows: list[dict]
    ran: int
    skipped: int
    failed_jobs: int
    wall_s: float
    job_seconds: dict[str, float]  # key -> seconds of the run that produced it (this run or earlier)
    csv: Path
    json: Path

    def __fspath__(self) -> str:  # the sweep folder: edgegan.report(result) reads it like a path
        return str(self.out)

    @property
    def failed_rows(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "failed"]


def _crash_result(job: Job, reason: str) -> dict:
    return {"key": job.key, "kind": job.kind, "deps": job.deps, "status": "failed", "reason": reason,
            "output": None, "seconds": None}


class _Graph:
    """Which jobs are finished, runnable or blocked by a failed dependency."""

    def __init__(self, jobs: list[Job], results: dict[str, dict]) -> None:
        self.jobs, self.results = jobs, results
        self.submitted: set[str] = set(results)

    def runnable(self) -> list[Job]:
        out = []
        for j in self.jobs:
            if j.key in self.submitted:
                continue
            deps = [self.results.get(d) for d in j.deps]
            if all(d is not None and d["status"] == "ok" for d in deps):
                out.append(j)
        return out

    def take(self) -> list[Job]:
        ready = self.runnable()
        self.submitted.update(j.key for j in ready)
        return ready


def _ray_module():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("the sweep runs on Ray, which is not installed; pip install 'edgegan[ray]' "
                                     "(or run with --sequential)") from None
    return ray


def _start_ray(spec: SweepSpec, opts: RayOptions):
    ray = _ray_module()
    slots = {slot_resource(t.label): 1 for t in spec.targets}
    started = False
    if not ray.is_initialized():
        if opts.address:
            ray.init(address=opts.address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=opts.num_cpus, object_store_memory=opts.object_store_mb * 1024 * 1024,
                     include_dashboard=False, resources=slots, log_to_driver=False, logging_level=logging.WARNING)
        started = True
    have = ray.cluster_resources()
    missing = [t for t in spec.targets if have.get(slot_resource(t.label), 0) < 1]
    if missing:
        if started:
            ray.shutdown()
        lines = ", ".join(f'"{slot_resource(t.label)}": 1' for t in missing)
        raise ConfigError(f"the Ray cluster has no slot for target {missing[0].label}; start the node that reaches it "
                          f"with ray start --resources='{{{lines}}}' (see docs/sweeps.md)")
    over = [t.label for t in spec.targets if have.get(slot_resource(t.label), 0) > 1]
    if over:
        log.warning("target %s has more than one slot in the cluster: measurements may overlap", over[0])
    return ray, started


def _options(job: Job, spec: SweepSpec) -> dict:
    if job.kind == "profile":
        target = next(t for t in spec.targets if t.label == job.target)
        # a remote board does the work: its slot, not a host CPU; profiling on this host takes a CPU too
        return {"num_cpus": 1 if target.url == "local" else 0, "resources": {slot_resource(target.label): 1},
                "max_retries": MAX_RETRIES}
    return {"num_cpus": 1, "max_retries": MAX_RETRIES}


def _event(out: Path, res: dict, job: Job) -> None:
    with open(out / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"time": time.time(), "key": job.key, "kind": job.kind, "model": job.model,
                             "pipeline": job.pipeline, "target": job.target, "status": res["status"],
                             "reason": res.get("reason"), "attempt": res.get("attempt"),
                             "seconds": res.get("seconds"), "host": res.get("host")}) + "\n")


def _write_views(out: Path, spec: SweepSpec, rows: list[dict]) -> None:
    """The post-training table + plot (spec ``quality``) and report.html, beside the results
    table. A view that cannot be drawn is a warning: the sweep's results are already written."""
    from ..errors import EdgeganError

    try:
        if spec.quality is not None:
            from .posttrain import CSV_NAME, PLOT_NAME, write_posttrain

            write_posttrain(spec, rows, out / CSV_NAME, out / PLOT_NAME)
        from ..reports.html_report import HTML_FILENAME, write_html_report

        write_html_report([out], out / HTML_FILENAME)
    except (EdgeganError, OSError, ValueError) as exc:
        log.warning("the sweep's report was not written: %s", exc)


def run_sweep(spec: SweepSpec, out: str | Path, *, sequential: bool = False, ray_options: Optional[RayOptions] = None,
              progress: Optional[Callable[[Job, dict], None]] = None, report: bool = True) -> SweepResult:
    """Run (or resume) ``spec`` into ``out``: jobs whose key already has a finished result
    there are skipped; the results table is rewritten as each job finishes. ``report``: write
    OUT/report.html at the end (and, with the spec's ``quality``, OUT/posttrain.csv + its plot)."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(json.dumps(spec.to_dict(), indent=2, sort_keys=True) + "\n")
    t0 = time.perf_counter()
    jobs = expand(spec)
    by_key = {j.key: j for j in jobs}
    results: dict[str, dict] = {}
    for j in jobs:
        done = finished_result(out, j.key)
        if done is not None:
            results[j.key] = done
    skipped = len(results)
    graph = _Graph(jobs, results)
    ran = failed = 0
    csv_path, json_path = write_table(out, spec, build_rows(spec, jobs, results))

    def record(job: Job, res: dict) -> None:
        nonlocal ran, failed, csv_path, json_path
        ran += 1
        failed += res["status"] != "ok"
        results[job.key] = res
        _event(out, res, job)
        csv_path, json_path = write_table(out, spec, build_rows(spec, jobs, results))
        if progress:
            progress(job, res)

    if sequential:
        while True:
            ready = graph.take()
            if not ready:
                break
            for job in ready:
                record(job, run_job(job.to_dict(), str(out), {d: results[d] for d in job.deps}))
    elif len(graph.runnable()):
        ray, started = _start_ray(spec, ray_options or RayOptions())
        remote = ray.remote(run_job)
        try:
            inflight: dict = {}

            def submit() -> None:
                for job in graph.take():
                    deps = {d: results[d] for d in job.deps}
                    inflight[remote.options(**_options(job, spec)).remote(job.to_dict(), str(out), deps)] = job

            submit()
            while inflight:
                (ref,), _ = ray.wait(list(inflight), num_returns=1)
                job = inflight.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - retries exhausted (worker died each time) or Ray failed
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    res = _crash_result(job, f"ray: {type(exc).__name__}: {first}")
                record(job, res)
                submit()
        finally:
            if started:
                ray.shutdown()
    rows = build_rows(spec, jobs, results)
    if report:
        _write_views(out, spec, rows)
    # jobs never run because a dependency failed are in the rows (stage of the failure)
    return SweepResult(out, rows, ran, skipped, failed, round(time.perf_counter() - t0, 3),
                       {k: r.get("seconds") for k, r in results.items() if k in by_key}, csv_path, json_path)
