"""Rich rendering shared by the CLI verbs (progress, fidelity table)."""
from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from ..results import STATUS_MARKS
from ..util.text import fmt_or_dash as _fmt

_COLOUR = {"ok": "green", "degraded": "yellow", "failed": "red", "incomplete": "yellow"}
# the marks of edgegan.results.STATUS_MARKS (the same in every verb and report), coloured
STATUS_MARK = {status: f"[{_COLOUR[status]}]{mark}[/]" for status, mark in STATUS_MARKS.items()}


def table_console(console=None):
    """Where tables print: the terminal at its width; a file, pipe or CI log (not a terminal,
    where nothing wraps) at a wide virtual width so no column has to be dropped."""
    from rich.console import Console

    if console is not None:
        return console
    c = Console()
    return c if c.is_terminal else Console(width=max(c.width, 220))


def fitted_table(title: str, columns: list[tuple[str, str, int]], rows: list[list[str]], width: int):
    """A table that fits ``width`` without cutting or splitting a value: ``columns`` are
    (header, justify, drop order; 0 = never dropped). Every kept column is at least as wide as
    its longest value (a header may wrap at spaces, a value never); the highest drop order goes
    first while the table is too wide; room left over unwraps headers. Returns (table, headers
    of the dropped columns)."""
    from rich.table import Table
    from rich.text import Text

    values = [max([0] + [Text.from_markup(r[i]).cell_len for r in rows]) for i in range(len(columns))]
    narrow = [max(v, max(len(w) for w in c[0].split())) for v, c in zip(values, columns)]
    keep = list(range(len(columns)))
    for i in sorted((i for i, c in enumerate(columns) if c[2] > 0), key=lambda i: -columns[i][2]):
        if sum(narrow[k] + 3 for k in keep) + 1 <= width:  # cell + 2 padding + 1 border, + the last border
            break
        keep.remove(i)
    widths = {k: narrow[k] for k in keep}
    spare = width - (sum(w + 3 for w in widths.values()) + 1)
    for k in keep:  # unwrap headers while there is room
        grow = max(0, min(len(columns[k][0]) - widths[k], spare))
        widths[k] += grow
        spare -= grow
    table = Table(title=title)
    for k in keep:
        table.add_column(columns[k][0], justify=columns[k][1], width=widths[k])
    for r in rows:
        table.add_row(*(r[k] for k in keep))
    return table, [columns[i][0] for i in range(len(columns)) if i not in keep]


def print_dropped(console, dropped: list[str]) -> None:
    if dropped:
        console.print(f"(not shown at {console.width} columns: {', '.join(dropped)}; widen the terminal or use --json)")


def given(**kwargs):
    """The keyword arguments the user actually gave (CLI options default to None so that the
    config dataclasses stay the only source of defaults)."""
    return {k: v for k, v in kwargs.items() if v is not None}


class ExportProgress:
    """Progress callback for run_export: one task per format plus a status line."""

    def __init__(self, formats: list[str]) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.formats = list(dict.fromkeys(["onnx", *formats]))
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), transient=False)
        self.task = None

    def __enter__(self) -> "ExportProgress":
        self.progress.__enter__()
        self.task = self.progress.add_task("loading model", total=len(self.formats))
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, stage, fmt, rec) -> None:
        text = {"load": "loading model", "onnx": "exporting ONNX + validating", "convert": f"converting {fmt}",
                "verify": f"verifying {fmt}", "latency": "measuring host latency (all formats, round-robin)"}
        if stage == "done" and rec is not None:
            mark = STATUS_MARK[rec.status]
            self.progress.console.print(f"  {fmt:<15} {mark}" + (f"  {escape(rec.reason)}" if rec.reason else ""))
            self.progress.advance(self.task)
        elif stage in text:
            self.progress.update(self.task, description=text[stage])


def print_fidelity_table(manifest: dict, out: Path, console=None) -> None:
    m = manifest["model"]
    title = (f"{escape(m['name'])}: {m['params']:,} params, {m['macs'] / 1e6:.1f} M MACs — fidelity vs float torch "
             f"on {manifest['inputs']['count']} stored inputs")
    # (header, justify, drop order when narrow: 0 = always shown)
    columns = [("format", "left", 0), ("status", "left", 0), ("size", "right", 0), ("size/fp32", "right", 5),
               ("PSNR dB", "right", 0), ("max abs", "right", 7), ("mean abs", "right", 8), ("latency ms", "right", 0),
               ("vs fp32 (same rt)", "right", 6), ("vs fastest float", "right", 4)]
    rows = []
    for a in manifest["artifacts"]:
        fid, lat = a.get("fidelity") or {}, a.get("host_latency_ms") or {}
        psnr = "exact" if fid.get("exact") else _fmt(fid.get("psnr_db"), ".1f")
        rows.append([
            a["format"], STATUS_MARK[a["status"]],
            _fmt(a.get("bytes") and a["bytes"] / 1e6, ".2f") + (" MB" if a.get("bytes") else ""),
            _fmt(a.get("size_ratio"), ".3f"), psnr, _fmt(fid.get("max_abs_err"), ".2e"),
            _fmt(fid.get("mean_abs_err"), ".2e"), _fmt(lat.get("median"), ".3f"),
            _fmt(lat.get("ratio_vs_float_same_runtime"), ".2f") + ("×" if lat.get("ratio_vs_float_same_runtime") else ""),
            _fmt(lat.get("ratio_vs_fastest_float"), ".2f") + ("×" if lat.get("ratio_vs_fastest_float") else ""),
        ])
    console = table_console(console)
    table, dropped = fitted_table(title, columns, rows, console.width)
    console.print(table)
    print_dropped(console, dropped)
    for a in manifest["artifacts"]:
        if a["status"] != "ok" and a.get("reason"):
            console.print(f"[bold]{a['format']}[/]: {escape(a['reason'])}")
    console.print(f"latency: batch 1, {manifest['artifacts'][0].get('host_latency_ms', {}).get('threads', '?')} threads, "
                  f"median over round-robin runs on {escape(manifest['host']['cpu'] or manifest['host']['arch'])}")
    inferred = (manifest.get("input") or {}).get("inferred")
    if inferred:
        console.print(f"input: {escape(str(inferred))} (inferred; pass --input-shape/--input-kind to override)")
    console.print(f"bundle: [bold]{escape(str(out))}[/] (report: report.html)")
