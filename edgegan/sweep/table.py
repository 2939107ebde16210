"""The one results table of a sweep: a row per (model, pipeline, format, target), written as
CSV and JSON again each time a job finishes (atomically), so a reader (or a killed sweep's
user) always sees every finished row. A failure is a row with the stage and the reason."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Optional

from .graph import Job
from .spec import SweepSpec

BASE_COLUMNS = ["model", "pipeline", "format", "target", "status", "stage", "reason", "params", "float_bytes",
                "packed_bytes", "weight_sparsity", "bytes", "fidelity_psnr_db",
                "p50_ms", "p90_ms", "mean_ms", "peak_memory_mb", "runtime", "arch", "device_host"]
TAIL_COLUMNS = ["compress_s", "export_s", "profile_s", "compare_s", "export_key", "profile_key", "compare_key"]


def quality_columns(spec: SweepSpec) -> list[str]:
    """The export job's host-side quality columns (spec ``quality``; none without it)."""
    q = spec.quality
    if q is None:
        return []
    pr = [f"{m}_{k}_vs_{ref}" for ref in q.references() for m in q.metrics for k in ("precision", "recall")]
    return (["macs", "int8_container_bytes", "gzip_bytes", "psnr_vs_float_db"] + pr
            + ["onnx_exporter"] + (["grid"] if q.grid else []))


def columns(spec: SweepSpec) -> list[str]:
    labels: list[str] = []
    for p in spec.pipelines:
        labels += [k for k in p.labels if k not in labels]
    cols = BASE_COLUMNS + labels + [m for m in spec.metrics if m not in BASE_COLUMNS]
    cols += [c for c in quality_columns(spec) if c not in cols]
    return cols + TAIL_COLUMNS + (["quality_s"] if spec.quality is not None else [])


def _failed(row: dict, stage: str, reason: Optional[str]) -> dict:
    row.update(status="failed", stage=stage, reason=reason or "failed")
    return row


def build_rows(spec: SweepSpec, jobs: list[Job], results: dict[str, dict]) -> list[dict]:
    """Rows for every chain whose outcome is known (finished or failed); unfinished chains are left out."""
    by_chain: dict[tuple, dict[str, Job]] = {}
    for j in jobs:
        if j.kind == "export":
            for t in spec.targets:
                by_chain.setdefault((j.model, j.pipeline, t.label), {})["export"] = j
        else:
            by_chain.setdefault((j.model, j.pipeline, j.target), {})[j.kind] = j
    labels = {p.name: p.labels for p in spec.pipelines}
    rows = []
    for (model, pipeline, target), chain in by_chain.items():
        for fmt in spec.formats:
            row = {"model": model, "pipeline": pipeline, "format": fmt, "target": target, **labels.get(pipeline, {})}
            for kind, j in chain.items():
                row[f"{kind}_key"] = j.key
            row = _fill(row, spec, chain, results, fmt)
            if row is not None:
                rows.append(row)
    return rows


def _fill(row: dict, spec: SweepSpec, chain: dict[str, Job], results: dict[str, dict], fmt: str) -> Optional[dict]:
    exp = results.get(chain["export"].key)
    if exp is None:
        return None
    if exp["status"] != "ok":
        return _failed(row, "export", exp["reason"])
    out = exp["output"]
    row.update(compress_s=out["compress_s"], export_s=out["export_s"], **out.get("model_stats", {}))
    if out.get("quality"):
        q = dict(out["quality"])
        if q.get("grid"):  # relative to the sweep folder, like every other path in the table
            q["grid"] = f"jobs/{chain['export'].key}/{q['grid']}"
        row.update(q)
    art = out["artifacts"].get(fmt, {})
    row.update(bytes=art.get("bytes"), fidelity_psnr_db=art.get("fidelity_psnr_db"), gzip_bytes=art.get("gzip_bytes"))
    if art.get("status") not in ("ok", "degraded"):
        return _failed(row, "export", art.get("reason") or f"no {fmt} artifact")
    prof = results.get(chain["profile"].key)
    if prof is None:
        return None
    if prof["status"] != "ok":
        return _failed(row, "profile", prof["reason"])
    prow = prof["output"]["rows"].get(fmt)
    row.update(profile_s=prof["seconds"], arch=prof["output"].get("arch"), device_host=prof.get("host"))
    if prow is None:
        return _failed(row, "profile", f"the profile has no {fmt} row")
    row.update({k: prow.get(k) for k in ("p50_ms", "p90_ms", "mean_ms", "peak_memory_mb", "runtime")})
    if prow["status"] not in ("ok", "degraded"):
        return _failed(row, "profile", prow.get("reason"))
    if "compare" in chain:
        cmp_ = results.get(chain["compare"].key)
        if cmp_ is None:
            return None
        if cmp_["status"] != "ok":
            return _failed(row, "compare", cmp_["reason"])
        row["compare_s"] = cmp_["seconds"]
        values = cmp_["output"]["metrics"].get(fmt, {})
        if "error" in values:
            return _failed(row, "compare", values["error"])
        row.update({m: values.get(m) for m in spec.metrics})
    row.update(status=prow["status"], stage="done", reason=prow.get("reason"))
    return row


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_table(out: Path, spec: SweepSpec, rows: list[dict]) -> tuple[Path, Path]:
    cols = columns(spec)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in cols})
    csv_path, json_path = Path(out) / "results.csv", Path(out) / "results.json"
    _atomic_write(csv_path, buf.getvalue())
    _atomic_write(json_path, json.dumps({"sweep": spec.name, "columns": cols, "rows": rows}, indent=2, default=str))
    return csv_path, json_path
