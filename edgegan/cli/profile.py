"""`edgegan profile BUNDLE --target T`: run every artifact on a device, measure, pull back, score."""
from __future__ import annotations

import argparse
import json
import sys

from rich.markup import escape

from ..results import MEASURED_STATUSES
from ..util.text import fmt_or_dash, split_csv
from .device import add_target_arguments, target_options
from .options import flag_errors
from .render import STATUS_MARK, given


# ProfileConfig field -> the flag that sets it
PROFILE_FLAGS = {"runs": "--runs", "warmup": "--warmup", "threads": "--threads", "timeout_s": "--timeout",
                 "power_probe": "--power", "power_baseline_s": "--power-baseline", "power_min_s": "--power-min-seconds"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle directory written by `edgegan export`")
    p.add_argument("--target", help="local (default), ssh://user@host[:port], user@host[:port], an ssh config Host, adb://SERIAL "
                                         "or browser (headless Chromium here, phone profile)")
    p.add_argument("--formats", type=split_csv, default=None, help="comma-separated formats (default: all in the bundle)")
    p.add_argument("--runs", type=int, help="timed runs per format (default 50)")
    p.add_argument("--warmup", type=int, help="untimed warmup runs (default 10)")
    p.add_argument("--threads", type=int, help="runtime threads (default 2)")
    p.add_argument("--out", help="results directory (default results/<model>-<target>)")
    p.add_argument("--no-memory", action="store_true", default=None, help="skip the peak-memory child processes")
    p.add_argument("--power", help="power probe: auto, none, rapl, hwmon, vcgencmd-pmic, android-battery")
    p.add_argument("--power-baseline", type=float, help="idle seconds sampled before the runs (default 1)")
    p.add_argument("--power-min-seconds", type=float,
                   help="keep inferring at least this long while sampling power (default 1)")
    p.add_argument("--timeout", type=float, help="seconds per format on the device (default 900)")
    p.add_argument("--resume", action="store_true", default=None, help="reuse finished formats from an earlier results.json in --out")
    p.add_argument("--force", action="store_true", default=None,
                   help="replace an earlier run in --out (its per-format results are removed first)")
    p.add_argument("--no-compare", action="store_true", default=None, help="skip LSH/kNN precision-recall vs the float samples")
    p.add_argument("--vs-host", dest="vs_host", action="store_true", default=None,
                   help="also compare device outputs with this host's for the same artifact (default for remote targets)")
    p.add_argument("--no-vs-host", dest="vs_host", action="store_false", default=None)
    p.add_argument("--keep-remote", action="store_true", default=None, help="leave the run directory on the device")
    p.add_argument("--per-op", dest="per_op", action="store_true", default=None,
                   help=".pte artifacts: ops ranked by time, delegated (XNNPACK) or portable kernel, in "
                        "<format>/per_op.json (ETDump; captured on this host, needs the full executorch package)")
    p.add_argument("--runner", choices=("python", "browser"),
                   help="python (default): the runner script on the target; browser: a benchmark page in the "
                        "target's browser (adb://SERIAL: the phone's browser over adb reverse + am start)")
    p.add_argument("--browser-device", help="--target browser: Playwright device profile (default 'Pixel 7') "
                                            "or 'desktop'")
    p.add_argument("--benchmark-binary", help="adb:// targets: TFLite's Android benchmark_model; pushed, run on each "
                                              ".tflite artifact, its output parsed into results.json (no samples)")
    p.add_argument("--json", action="store_true", help="print results.json instead of the table")
    add_target_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..devices.profile import ProfileConfig, run_profile
    from ..devices.targets import require_target_packages

    require_target_packages(args.target or "local", args.ssh_config)  # one line before any progress display

    # options default to None: ProfileConfig owns every default
    kwargs = given(target=args.target, formats=args.formats, runs=args.runs, warmup=args.warmup, threads=args.threads,
                   out=args.out, memory=None if args.no_memory is None else not args.no_memory,
                   power_probe=args.power, power_baseline_s=args.power_baseline, power_min_s=args.power_min_seconds,
                   timeout_s=args.timeout, resume=args.resume, force=args.force,
                   compare=None if args.no_compare is None else not args.no_compare, vs_host=args.vs_host,
                   keep_remote=args.keep_remote, per_op=args.per_op, runner=args.runner,
                   browser_device=args.browser_device, benchmark_binary=args.benchmark_binary)
    with flag_errors(PROFILE_FLAGS):
        cfg = ProfileConfig(bundle=args.bundle, **kwargs, target_options=target_options(args))
    if args.json:
        out, doc = run_profile(cfg)
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        with ProfileProgress(cfg.formats) as progress:
            out, doc = run_profile(cfg, progress=progress)
        print_profile_table(doc, out)
    return 0 if all(r.get("status") in MEASURED_STATUSES for r in doc["results"]) else 1  # degraded is a result, as in export


STAGES = {"push": (1, "pushing"), "run": (2, "running on the device"), "pull": (3, "pulling results"),
          "compare": (4, "scoring samples"), "done": (5, "done")}


class ProfileProgress:
    """One progress bar per format (push -> run -> pull -> score), then its status mark."""

    def __init__(self, formats: list[str] | None = None) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.fields[fmt]:<15}"), BarColumn(bar_width=20),
                                 TextColumn("{task.description}"), TimeElapsedColumn(), transient=False)
        self.tasks: dict[str, int] = {}
        self.formats = formats or []

    def __enter__(self) -> "ProfileProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def _task(self, fmt: str) -> int:
        if fmt not in self.tasks:
            self.tasks[fmt] = self.progress.add_task("waiting", total=len(STAGES), fmt=fmt)
        return self.tasks[fmt]

    def __call__(self, stage: str, fmt: str | None, row=None) -> None:
        """``row`` is the finished format's ProfileRow (stage "done")."""
        if fmt is None:
            if stage == "connect":
                self.progress.console.print("connecting to the target and reading device info ...")
            return
        step, text = STAGES.get(stage, (0, stage))
        if stage == "done" and row is not None:
            # the profiler already applied the bundle's threshold: the row's status is what to show
            text = STATUS_MARK.get(row.status, escape(row.status)) + (" (resumed)" if row.resumed else "")
        self.progress.update(self._task(fmt), completed=step, description=text)
        if stage == "done" and row is not None and not row.ok:
            mark = STATUS_MARK.get(row.status, STATUS_MARK["failed"])
            self.progress.console.print(f"  {mark} {escape(fmt)}: {escape(str(row.reason))}")


def print_profile_table(doc: dict, out, console=None) -> None:
    from ..reports.profile_cells import quality_cells, summary_metrics
    from ..results import ok_psnr_db_of, shown_reason, shown_status
    from .render import fitted_table, print_dropped, table_console

    dev = doc.get("device") or {}
    emu = f" [yellow](emulated: {escape(str(dev['emulator']))})[/]" if dev.get("emulator") else ""
    # device text is untrusted and paths/names are the user's: never read as markup
    title = escape(f"{doc['bundle']['model']} on {doc['target']}: {dev.get('arch')} {dev.get('cpu')}") + emu
    ok_psnr_db = ok_psnr_db_of(doc)
    # (header, justify, drop order when narrow: 0 = always shown)
    metrics = summary_metrics()  # one column per registered summary metric
    columns = [("format", "left", 0), ("status", "left", 0), ("runtime", "left", 5), ("p50 ms", "right", 0),
               ("p99 ms", "right", 6), ("load ms", "right", 9), ("first ms", "right", 10), ("peak MB", "right", 4),
               ("power", "left", 11), ("PSNR dB", "right", 0),
               *((m.short or m.name, "right", 7 + i * 0.1) for i, m in enumerate(metrics)), ("vs host", "right", 8)]
    rows, reasons = [], []
    for r in doc["results"]:
        lat = r.get("latency_ms") or {}
        ok = r.get("status") in MEASURED_STATUSES
        psnr, cells, host = quality_cells(r) if ok else ("–", ["–"] * len(metrics), "–")
        mem = "–"
        if ok and r.get("peak_memory_mb") is not None:
            mem = f"{r['peak_memory_mb']:.0f} {r.get('memory_method')}"
        elif ok and r.get("peak_memory_range_mb"):
            lo, hi = r["peak_memory_range_mb"]
            mem = f"{lo:.0f}–{hi:.0f} emulated"
        pw = r.get("power") or {}
        power = (f"{pw['avg_w']:.2f} W" if pw.get("avg_w") is not None else pw.get("provenance", "–")) if ok else "–"
        status = shown_status(r, ok_psnr_db)
        rows.append([escape(str(r["format"])), STATUS_MARK.get(status, escape(status)),
                     escape(str(r.get("runtime") or "–")), fmt_or_dash(lat.get("p50")), fmt_or_dash(lat.get("p99")),
                     fmt_or_dash(r.get("model_load_ms"), ".1f"), fmt_or_dash(r.get("first_inference_ms")),
                     escape(mem), escape(str(power)), psnr, *cells, host])
        if shown_reason(r, ok_psnr_db):
            reasons.append(f"[bold]{escape(str(r['format']))}[/]: {escape(shown_reason(r, ok_psnr_db)[:300])}")
    console = table_console(console)
    table, dropped = fitted_table(title, columns, rows, console.width)
    console.print(table)
    print_dropped(console, dropped)
    for line in reasons:  # below the table: a long reason would squeeze every column
        console.print(line)
    sources = {(r.get("power") or {}).get("provenance") for r in doc["results"] if r.get("status") in MEASURED_STATUSES}
    console.print(escape("power: " + ", ".join(sorted(s for s in sources if s))) if sources else "power: –")
    print_per_op_tables(doc, out, console)
    console.print(f"results: [bold]{escape(str(out))}[/] (results.json, results.csv, report.md, report.html)")


PER_OP_SHOWN = 12
KIND_MARK = {"portable": "[yellow]portable kernel[/]", "delegate": "[green]delegate call[/]",
             "delegated": "[green]in delegate[/]"}


def print_per_op_tables(doc: dict, out, console, top: int = PER_OP_SHOWN) -> None:
    """One ranked table per format that has a per-op profile (``profile --per-op``)."""
    from pathlib import Path

    from ..devices.per_op import PerOpProfile
    from ..errors import ResultsError
    from .render import fitted_table

    for r in doc["results"]:
        info = r.get("per_op")
        if not info:
            continue
        fmt = escape(str(r["format"]))
        if info.get("reason"):
            console.print(f"[bold]{fmt}[/] per-op: [red]none[/] ({escape(str(info['reason']))})")
            continue
        try:
            prof = PerOpProfile.load(Path(out) / str(info["file"]))
        except ResultsError as exc:
            console.print(f"[bold]{fmt}[/] per-op: [red]unreadable[/] ({escape(str(exc))})")
            continue
        prog = prof.program
        title = escape(f"{r['format']} per op: {prof.execute_ms or 0:.3f} ms per inference on this host, "
                       f"{prog.delegate_count} delegate calls, {prog.portable_count} portable kernel calls")
        columns = [("#", "right", 0), ("op", "left", 0), ("where", "left", 0), ("count", "right", 0),
                   ("ms / inference", "right", 0), ("share", "right", 1)]
        rows = [[str(i + 1), escape(o.op), KIND_MARK.get(o.kind, escape(o.kind)), str(o.count),
                 f"{o.total_ms:.4f}", f"{o.share:.0%}" if o.share is not None else "–"]
                for i, o in enumerate(prof.top(top))]
        # the top ops inside the delegate calls (their time is part of the delegate-call rows)
        inside = [["·", escape(o.op), KIND_MARK["delegated"] + escape(f" ({o.backend})" if o.backend else ""),
                   str(o.count), f"{o.total_ms:.4f}", f"{o.share:.0%}" if o.share is not None else "–"]
                  for o in prof.delegated_ops[:5]]
        table, _ = fitted_table(title, columns, rows + inside, console.width)
        console.print(table)
        if len(prof.ops) > top:
            console.print(f"  ... {len(prof.ops) - top} more ops in {escape(str(info['file']))}")
        if info.get("note"):
            console.print(f"  [yellow]{escape(str(info['note']))}[/]")
