"""Rich rendering shared by the CLI verbs (progress, fidelity table)."""
from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from ..util.text import fmt_or_dash as _fmt

STATUS_MARK = {"ok": "[green]✔ ok[/]", "degraded": "[yellow]▲ degraded[/]", "failed": "[red]✘ failed[/]"}


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


def print_fidelity_table(manifest: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    m = manifest["model"]
    table = Table(title=f"{escape(m['name'])}: {m['params']:,} params, {m['macs'] / 1e6:.1f} M MACs — fidelity vs float torch "
                        f"on {manifest['inputs']['count']} stored inputs")
    for col, just in (("format", "left"), ("status", "left"), ("size", "right"), ("size/fp32", "right"),
                      ("PSNR dB", "right"), ("max abs", "right"), ("mean abs", "right"), ("latency ms", "right"),
                      ("vs fp32 (same rt)", "right"), ("vs fastest float", "right")):
        table.add_column(col, justify=just)
    for a in manifest["artifacts"]:
        fid, lat = a.get("fidelity") or {}, a.get("host_latency_ms") or {}
        psnr = "exact" if fid.get("exact") else _fmt(fid.get("psnr_db"), ".1f")
        table.add_row(
            a["format"], STATUS_MARK[a["status"]],
            _fmt(a.get("bytes") and a["bytes"] / 1e6, ".2f") + (" MB" if a.get("bytes") else ""),
            _fmt(a.get("size_ratio"), ".3f"), psnr, _fmt(fid.get("max_abs_err"), ".2e"),
            _fmt(fid.get("mean_abs_err"), ".2e"), _fmt(lat.get("median"), ".3f"),
            _fmt(lat.get("ratio_vs_float_same_runtime"), ".2f") + ("×" if lat.get("ratio_vs_float_same_runtime") else ""),
            _fmt(lat.get("ratio_vs_fastest_float"), ".2f") + ("×" if lat.get("ratio_vs_fastest_float") else ""),
        )
    console = Console()
    console.print(table)
    for a in manifest["artifacts"]:
        if a["status"] != "ok" and a.get("reason"):
            console.print(f"[bold]{a['format']}[/]: {escape(a['reason'])}")
    console.print(f"latency: batch 1, {manifest['artifacts'][0].get('host_latency_ms', {}).get('threads', '?')} threads, "
                  f"median over round-robin runs on {escape(manifest['host']['cpu'] or manifest['host']['arch'])}")
    inferred = (manifest.get("input") or {}).get("inferred")
    if inferred:
        console.print(f"input: {escape(str(inferred))} (inferred; pass --input-shape/--input-kind to override)")
    console.print(f"bundle: [bold]{escape(str(out))}[/]")
