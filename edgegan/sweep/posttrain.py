"""The post-training view of a sweep: one row per compression pipeline (of one model on one
target) with the columns of ``docs/posttrain_sweep.csv``, and its trade-off plot. Built from
the sweep's results table, so ``benchmarks/posttrain_sweep.py`` and ``edgegan sweep SPEC
--csv F --plot F`` write the same files from the same jobs.

It needs the spec's ``quality`` (the host-side quality columns); the pipelines' ``labels``
give series / bits / clip / sparsity / channel_ratio / criterion. Latency is filled only where
the graph differs from the float model's (the float pipeline and channel-pruned ones; weight-
only compression keeps the float graph), from the onnx row's p50 on the target, with its ratio
to the float pipeline's."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

from ..errors import ConfigError
from .spec import SweepSpec

CSV_COLUMNS = [
    "setting", "series", "bits", "clip", "sparsity", "channel_ratio", "criterion", "params", "macs",
    "float_bytes", "packed_bytes", "int8_container_bytes", "onnx_bytes", "onnx_gzip_bytes", "ort_int8_bytes",
    "weight_sparsity", "psnr_vs_float_db",
    "lsh_precision_vs_real", "lsh_recall_vs_real", "knn_precision_vs_real", "knn_recall_vs_real",
    "lsh_precision_vs_float", "lsh_recall_vs_float", "knn_precision_vs_float", "knn_recall_vs_float",
    "onnx_latency_ms", "latency_ratio_vs_float", "onnx_exporter", "grid",
]
CSV_NAME, PLOT_NAME = "posttrain.csv", "posttrain_tradeoff.png"
_PER_MODEL = ["series", "bits", "clip", "sparsity", "channel_ratio", "criterion", "params", "macs", "float_bytes",
              "packed_bytes", "int8_container_bytes", "weight_sparsity", "psnr_vs_float_db", "onnx_exporter", "grid"]


def _timed(series: str) -> bool:
    return series == "float" or series.startswith("channel-prune")


def posttrain_rows(spec: SweepSpec, rows: list[dict], model: Optional[str] = None,
                   target: Optional[str] = None) -> list[dict]:
    """One row per pipeline (spec order) of ``model`` on ``target`` (default: the spec's first
    of each); a pipeline whose chain failed keeps its labels and blanks elsewhere."""
    if spec.quality is None:
        raise ConfigError("the post-training table needs 'quality' in the sweep spec (the host-side quality columns)")
    model = model or spec.models[0].name
    target = target or spec.targets[0].label
    mine = [r for r in rows if r["model"] == model and r["target"] == target]
    out = []
    for p in spec.pipelines:
        by_fmt = {r["format"]: r for r in mine if r["pipeline"] == p.name}
        row: dict = {"setting": p.name, "series": p.name, "bits": 32, "clip": False, "sparsity": 0.0,
                     "channel_ratio": 0.0, "criterion": "", **p.labels}
        for r in by_fmt.values():  # per-model values are the same in every format row; take any present
            for k in _PER_MODEL:
                if r.get(k) is not None and k not in p.labels:
                    row[k] = r[k]
        onnx, int8 = by_fmt.get("onnx", {}), by_fmt.get("ort-int8", {})
        row.update(onnx_bytes=onnx.get("bytes"), onnx_gzip_bytes=onnx.get("gzip_bytes"), ort_int8_bytes=int8.get("bytes"))
        for ref in spec.quality.references():
            for m in ("lsh", "knn"):
                for k in ("precision", "recall"):
                    col = f"{m}_{k}_vs_{ref}"
                    row[col] = next((r[col] for r in by_fmt.values() if r.get(col) is not None), None)
        if _timed(str(row["series"])) and onnx.get("status") in ("ok", "degraded"):
            row["onnx_latency_ms"] = onnx.get("p50_ms")
        out.append(row)
    base = next((r for r in out if r["series"] == "float" and r.get("onnx_latency_ms")), None)
    base_ms = base["onnx_latency_ms"] if base else None
    for r in out:
        if base_ms and r.get("onnx_latency_ms"):
            r["latency_ratio_vs_float"] = round(r["onnx_latency_ms"] / base_ms, 3)
        if r.get("onnx_latency_ms") is not None:
            r["onnx_latency_ms"] = round(r["onnx_latency_ms"], 4)
    return out


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_COLUMNS})
    return buf.getvalue()


def write_posttrain(spec: SweepSpec, rows: list[dict], csv_path: Optional[str | Path],
                    plot_path: Optional[str | Path] = None, model: Optional[str] = None,
                    target: Optional[str] = None) -> list[dict]:
    """Write the per-pipeline CSV and/or the trade-off PNG (each when its path is given); return the rows."""
    from ..util.files import atomic_write

    table = posttrain_rows(spec, rows, model, target)
    if csv_path is not None:
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(Path(csv_path), csv_text(table))
    if plot_path is not None:
        from ..reports.posttrain_plot import plot_posttrain

        plot_posttrain(table, plot_path, model or spec.models[0].name,
                       "digits-CNN" if spec.quality.extractor == "digits" else spec.quality.extractor)
    return table
