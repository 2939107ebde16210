"""`edgegan sweep SPEC.yaml|json`: a grid of models x compression pipelines x formats x
targets, run as a job graph on Ray (local by default, ``--ray-address`` for a cluster), one
measurement at a time per device, into one results table (OUT/results.csv and results.json,
rewritten as jobs finish) and OUT/report.html. Run the same command again to resume: finished
jobs are skipped by their content-hashed keys. Exit 0 when every row is ok, 1 when some rows failed (they carry
the stage and the reason). ``--csv``/``--plot``: the post-training view (one row per pipeline,
the columns of docs/posttrain_sweep.csv, and its trade-off plot; needs ``quality`` in the spec),
also written as OUT/posttrain.csv and OUT/posttrain_tradeoff.png."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="sweep spec (.json, .yaml or .yml)")
    p.add_argument("--out", default=None, help="sweep folder (default: sweeps/<spec name>)")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (e.g. auto or 10.0.0.5:6379); "
                   "default: start a local Ray here")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray (default 2)")
    p.add_argument("--object-store-mb", type=int, default=200, help="object store of the local Ray (default 200)")
    p.add_argument("--sequential", action="store_true", help="no Ray: run the jobs one by one in this process")
    p.add_argument("--dry-run", action="store_true", help="print the job graph (kind, key, deps) and exit")
    p.add_argument("--json", action="store_true", help="print the results table as JSON")
    p.add_argument("--csv", type=Path, default=None, help="also write the post-training table (one row per pipeline; "
                   "needs 'quality' in the spec) to this file")
    p.add_argument("--plot", type=Path, default=None, help="also write the post-training trade-off plot (PNG) here")
    p.add_argument("--force", action="store_true", help="replace existing --csv / --plot files")
    p.add_argument("--no-report", action="store_true", help="do not write OUT/report.html (and the post-training view)")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, OutputError
    from ..sweep import RayOptions, expand, load_spec, run_sweep

    spec = load_spec(args.spec)
    if args.dry_run:
        jobs = [{"kind": j.kind, "key": j.key, "deps": j.deps, "model": j.model, "pipeline": j.pipeline,
                 "target": j.target} for j in expand(spec)]
        print(json.dumps({"spec": spec.to_dict(), "jobs": jobs}, indent=2))
        return 0
    out = Path(args.out) if args.out else Path("sweeps") / spec.name
    if (args.csv or args.plot) and spec.quality is None:
        raise ConfigError("--csv / --plot write the post-training view, which needs 'quality' in the sweep spec")
    for f in (args.csv, args.plot):
        if f is not None and f.exists() and not args.force:
            raise OutputError(f"'{f}' exists; pass --force to replace it or choose another file")

    def progress(job, res) -> None:
        where = f" on {job.target}" if job.target else ""
        tail = "" if res["status"] == "ok" else f": {res.get('reason')}"
        print(f"{res['status']:6s} {job.kind:7s} {job.model}/{job.pipeline}{where} "
              f"({res.get('seconds') or 0:.1f} s, attempt {res.get('attempt') or '-'}){tail}", file=sys.stderr, flush=True)

    # Ray prints its own notes (e.g. "A worker died ...") on stdout: keep stdout for the table / JSON
    with contextlib.redirect_stdout(sys.stderr):
        result = run_sweep(spec, out, sequential=args.sequential, progress=progress,
                           ray_options=RayOptions(args.ray_address, args.num_cpus, args.object_store_mb),
                           report=not args.no_report)
    if args.csv or args.plot:
        from ..sweep.posttrain import write_posttrain

        write_posttrain(spec, result.rows, args.csv, args.plot)
    if args.json:
        print(json.dumps({"out": str(result.out), "ran": result.ran, "skipped": result.skipped,
                          "wall_s": result.wall_s, "rows": result.rows}, indent=2, default=str))
    else:
        for r in result.rows:
            p50 = "" if r.get("p50_ms") is None else f"{r['p50_ms']:.3f} ms"
            print(f"{r['status']:8s} {r['model']}/{r['pipeline']} {r['format']} on {r['target']} {p50}"
                  + (f"  [{r['stage']}: {r['reason']}]" if r["status"] == "failed" else ""))
        print(f"{len(result.rows)} rows ({len(result.failed_rows)} failed); {result.ran} jobs run, "
              f"{result.skipped} skipped (finished earlier); {result.wall_s:.1f} s; table: {result.csv}"
              + ("" if args.no_report else f"; report: {result.out / 'report.html'}"))
    return 1 if result.failed_rows else 0
