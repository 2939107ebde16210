"""report.md of a bundle: what `edgegan export` printed (the fidelity table), kept with the bundle.

Rendered from the manifest alone (plain markdown, no rich), so it says exactly what bundle.json
says: the model, the reference the PSNRs are measured against, every format with its status,
and the tools that made the artifacts.
"""
from __future__ import annotations

from typing import Any

from ..results import STATUS_MARKS
from ..util.text import fmt_or_dash as _f

REPORT_FILENAME = "report.md"


def _cell(value: Any) -> str:
    """A markdown table cell: pipes escaped, one line."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _row(cells: list) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def bundle_report_markdown(manifest: dict) -> str:
    """The markdown report of a bundle manifest (``Manifest.to_dict()``)."""
    m = manifest["model"]
    macs = m.get("macs")
    lines = [f"# {m['name']}: export report", ""]
    lines.append(f"- model: {m['name']} ({m.get('source') or 'unknown source'}), family {m.get('family') or '–'}, "
                 f"{m['params']:,} parameters" if m.get("params") is not None else f"- model: {m['name']}")
    if macs is not None:
        lines.append(f"- MACs per sample: {macs:,}")
    if m.get("weights_sha256"):
        lines.append(f"- float weights sha256: `{m['weights_sha256']}`")
    if manifest.get("compression"):
        lines.append("- compression: " + " -> ".join(r.get("method", "?") for r in manifest["compression"]))
    ref = manifest.get("reference") or {}
    count = (manifest.get("inputs") or {}).get("count")
    lines.append(f"- reference: {ref.get('source') or 'the float model'} ({ref.get('producer') or 'torch'}), "
                 f"{count} stored inputs")
    thresholds = manifest.get("thresholds") or {}
    if thresholds.get("ok_psnr_db") is not None:
        lines.append(f"- status: ok when PSNR >= {thresholds['ok_psnr_db']:g} dB vs the reference, else degraded")
    export = manifest.get("export") or {}
    if export:
        lines.append(f"- ONNX: {export.get('exporter')} exporter, opset {export.get('opset')}, max abs err vs torch "
                     f"{_f(export.get('max_abs_err_vs_torch'), '.2e')}")
    base = export.get("base_reference") or {}
    if base:
        if base.get("used"):
            lines.append(f"- base model {base['model']}: the compressed float model is at "
                         f"{_f(base.get('float_psnr_db'), '.2f')} dB PSNR vs it; column 'PSNR vs base' below")
        else:
            lines.append(f"- base model {base.get('model') or '–'}: not compared ({base.get('reason')})")
    lines += ["", "## Fidelity", ""]
    with_base = bool(base.get("used"))
    header = ["format", "status", "size (bytes)", "PSNR dB", "max abs err", "latency ms (host)", "tool", "reason"]
    if with_base:
        header.insert(4, "PSNR vs base")
    lines += [_row(header), _row(["---"] * len(header))]
    for a in manifest["artifacts"]:
        fid, lat = a.get("fidelity") or {}, a.get("host_latency_ms") or {}
        psnr = "exact" if fid.get("exact") else _f(fid.get("psnr_db"), ".2f")
        tool = " ".join(x for x in (a.get("tool"), a.get("tool_version")) if x) or "–"
        size = f"{a['bytes']:,}" if a.get("bytes") is not None else "–"
        cells = [a["format"], STATUS_MARKS.get(a["status"], a["status"]), size, psnr,
                 _f(fid.get("max_abs_err"), ".2e"), _f(lat.get("median"), ".3f"), tool, a.get("reason") or ""]
        if with_base:
            vs = fid.get("vs_base") or {}
            cells.insert(4, "exact" if vs.get("exact") else _f(vs.get("psnr_db"), ".2f"))
        lines.append(_row(cells))
    tools = manifest.get("tools") or {}
    if tools:
        lines += ["", "## Tools", ""]
        lines += [f"- {name}: {version}" for name, version in tools.items() if version]
    return "\n".join(lines) + "\n"
