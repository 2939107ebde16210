"""Typed results of the Python API: what export, profile and compare hand back.

Each wraps the JSON record its stage writes (bundle.json, results.json, compare.json) without
copying its schema: ``to_dict()`` / ``to_json()`` give that record, attributes give the values
a notebook needs, and ``repr()`` is a plain-text table like the CLI's (at most 100 columns).
No torch here: results are numpy + JSON.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..bundle import Bundle
from ..results import ProfileRow, ProfileRun, ResultsLayout
from ..util.jsonsafe import json_safe

WIDTH = 100


def _num(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "inf" if isinstance(v, float) and v == math.inf else "–"
    return format(v, spec)


def _json_safe(obj: Any) -> Any:
    return json_safe(obj, drop_private=True)


def text_table(headers: list[str], rows: list[list[str]], width: int = WIDTH) -> str:
    """Left-aligned text columns; the last column is cut so a line never exceeds ``width``."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = []
    for cells in [headers, ["-" * w for w in widths], *rows]:
        line = "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)


def fit(text: str, width: int = WIDTH) -> str:
    """Every line cut to ``width`` columns (long paths and CPU names included)."""
    return "\n".join(line if len(line) <= width else line[: width - 1] + "…" for line in text.splitlines())


class ExportedBundle(Bundle):
    """The bundle :func:`edgegan.export` wrote: a :class:`~edgegan.bundle.Bundle` whose repr is
    the fidelity table and that converts to the manifest dict."""

    @property
    def formats(self) -> list[str]:
        return [r.format for r in self.artifact_records()]

    def ok_formats(self) -> list[str]:
        return [r.format for r in self.artifact_records() if r.status != "failed"]

    def to_dict(self) -> dict:
        return {"bundle": str(self.root), **self.manifest.to_dict()}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(_json_safe(self.to_dict()), indent=indent)

    def __repr__(self) -> str:
        m = self.manifest.to_dict()
        model, inp = m.get("model", {}), m.get("input", {})
        head = (f"Bundle {self.root}\n  model {model.get('name')}: {model.get('params', 0):,} params, "
                f"input {inp.get('kind')} {inp.get('shape')}" + (" (inferred)" if inp.get("inferred") else ""))
        rows = []
        for r in self.artifact_records():
            fid, lat = r.fidelity or {}, r.host_latency_ms or {}
            psnr = "exact" if fid.get("exact") else _num(fid.get("psnr_db"), ".1f")
            rows.append([r.format, r.status, _num(r.bytes and r.bytes / 1e3, ".1f"), _num(r.size_ratio, ".3f"),
                         psnr, _num(fid.get("max_abs_err"), ".1e"), _num(lat.get("median"), ".3f"), r.reason or ""])
        return fit(head) + "\n" + text_table(["format", "status", "kB", "size/fp32", "PSNR dB", "max abs", "host ms",
                                         "reason"], rows)


class ProfileResults:
    """A profile run: rows per format, the pulled samples, the device, and where it is on disk."""

    def __init__(self, out: Path, document: dict, bundle: Bundle) -> None:
        self.out = Path(out)
        self.run = ProfileRun.parse(document, str(self.out / ResultsLayout.RESULTS)).attach(self.out)
        self.document = self.run.to_dict()
        self.bundle = bundle
        self.rows: list[ProfileRow] = self.run.results
        for r in self.rows:
            object.__setattr__(r, "_bundle", bundle)

    @property
    def formats(self) -> list[str]:
        return [r.format for r in self.rows]

    @property
    def complete(self) -> bool:
        return bool(self.document.get("complete"))

    @property
    def device(self) -> dict:
        return dict(self.document.get("device") or {})

    def __getitem__(self, fmt: str) -> ProfileRow:
        for r in self.rows:
            if r.format == fmt:
                return r
        raise KeyError(f"no row for format '{fmt}' (have: {', '.join(self.formats)})")

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def samples(self, fmt: str) -> np.ndarray:
        return self[fmt].load_samples()

    def reference(self) -> np.ndarray:
        """The float torch outputs for the same inputs (from the bundle)."""
        return self.bundle.reference()

    def to_dict(self) -> dict:
        return _json_safe(self.document)

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def __repr__(self) -> str:
        dev = self.device
        head = (f"ProfileResults {self.document.get('bundle', {}).get('model')} on {self.document.get('target')}: "
                f"{dev.get('arch', '?')} {dev.get('cpu') or ''}".rstrip()
                + ("" if self.complete else " (INCOMPLETE)") + f"\n  results {self.out}")
        rows = []
        for r in self.rows:
            q = r.quality
            knn = (f"{_num(q.get('knn_precision'), '.2f')}/{_num(q.get('knn_recall'), '.2f')}"
                   if "knn_precision" in q else "–")
            psnr = "exact" if q.get("exact") else _num(r.psnr_db, ".1f")
            rows.append([r.format, r.status, str(r.runtime or "–"), _num(r.p50_ms, ".3f"),
                         _num((r.latency_ms or {}).get("p99"), ".3f"), _num(r.peak_memory_mb, ".0f"), psnr, knn,
                         "" if r.ok else (r.reason or "")])
        return fit(head) + "\n" + text_table(["format", "status", "runtime", "p50 ms", "p99 ms", "peak MB", "PSNR dB",
                                         "kNN P/R", "reason"], rows)


class Comparison:
    """Metrics of samples B against samples A (``edgegan.metrics.compare.compare_samples``)."""

    QUALITY_LABELS = {"psnr_db": "PSNR dB (paired)", "lsh_precision": "LSH precision", "lsh_recall": "LSH recall",
                      "lsh_knn_precision": "LSH-kNN precision", "lsh_knn_recall": "LSH-kNN recall",
                      "knn_precision": "kNN precision", "knn_recall": "kNN recall", "density": "density",
                      "coverage": "coverage", "frechet_distance": "Frechet distance", "kid": "KID",
                      "kid_std": "KID std", "lsh_knn_approx_error": "LSH-kNN approx. error (est.)", "inception_score": "Inception Score (digits classifier)"}

    def __init__(self, result: dict, a_label: str, b_label: str) -> None:
        self.result = result
        self.a_label, self.b_label = a_label, b_label

    @property
    def metrics(self) -> dict[str, Optional[float]]:
        """The headline values (PSNR when paired, LSH / kNN precision-recall, density, coverage)."""
        return {k: (None if v is None else float(v)) for k, v in self.result["quality"].items()}

    @property
    def paired(self) -> Optional[dict]:
        """Paired metrics (PSNR, SSIM, errors) when A and B come from the same inputs, else None."""
        p = self.result.get("paired")
        return None if p is None else {k: v for k, v in p.items() if not isinstance(v, (list, np.ndarray))}

    @property
    def psnr_db(self) -> Optional[float]:
        return self.metrics.get("psnr_db")

    def __getitem__(self, key: str) -> Optional[float]:
        values = {**(self.paired or {}), **self.metrics}
        if key not in values:
            raise KeyError(f"no metric '{key}' (have: {', '.join(values)})")
        return values[key]

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """compare.json + compare_grid.png, as `edgegan compare --out` writes them."""
        from ..reports.compare_report import write_outputs

        return write_outputs(self.result, out_dir)

    def to_dict(self) -> dict:
        return {"a": self.a_label, "b": self.b_label, **_json_safe(self.result)}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def __repr__(self) -> str:
        feats = self.result.get("features", {})
        head = (f"Comparison  A: {self.a_label}\n            B: {self.b_label}\n"
                f"  features {feats.get('name')} ({feats.get('dim')}-d), k={self.result.get('k')}, "
                f"{'paired' if self.result.get('paired') else 'unpaired'}")
        rows = [[self.QUALITY_LABELS.get(k, k), "inf" if v == math.inf else _num(v, ".4g")]
                for k, v in self.metrics.items() if not (k == "psnr_db" and v is None)]
        for key, label in (("ssim", "SSIM (paired)"), ("max_abs_err", "max abs err (paired)")):
            if self.paired and key in self.paired:
                rows.append([label, _num(self.paired[key], ".4g")])
        return fit(head) + "\n" + text_table(["metric (B vs A)", "value"], rows)

