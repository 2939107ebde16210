"""Profile results: the results folder and its records, the contract between `edgegan profile`
(which writes them) and reports, compare and the Python API (which read them).

Layout of one results folder (:class:`ResultsLayout`)::

    results.json          ProfileRun: settings, device, one ProfileRow per format; ``complete``
    results.csv           the rows flattened (one line per format)
    report.md, grid.png   human-readable report and sample grid
    <format>/samples.npy  the device's outputs for the bundle's stored inputs
    <format>/device_results.json   the runner's own Result, as pulled
    <format>/per_op.json  ``profile --per-op``: ops ranked by time (edgegan.devices.per_op.PerOpProfile)

Readers go through :meth:`ProfileRun.load`, which validates types once (a results folder may
come from another machine), so nothing downstream re-checks keys.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

from .config import JsonConfig
from .errors import ConfigError, ResultsError

RESULTS_SCHEMA = "edgegan.profile/1"
ROW_STATUSES = ("ok", "degraded", "failed", "incomplete")  # degraded: ran, below the bundle's PSNR threshold
MEASURED_STATUSES = ("ok", "degraded")  # rows that ran on the device and carry measurements and samples
# One set of marks wherever a status is shown (export's artifact rows, profile's rows, reports).
STATUS_MARKS = {"ok": "✔ ok", "degraded": "▲ degraded", "failed": "✘ failed", "incomplete": "⏸ incomplete"}


def ok_psnr_db_of(doc: dict) -> Optional[float]:
    """The bundle's fidelity threshold recorded in a results document (None for runs written
    before it was recorded)."""
    value = ((doc.get("bundle") or {}).get("thresholds") or {}).get("ok_psnr_db")
    return float(value) if isinstance(value, (int, float)) else None


def below_threshold(psnr: Any, ok_psnr_db: Optional[float]) -> Optional[str]:
    """The one fidelity rule export and profile share: PSNR vs the float reference below the
    bundle's ``ok_psnr_db`` makes an artifact ``degraded``; returns why, or None."""
    if ok_psnr_db is None or not isinstance(psnr, (int, float)) or psnr >= ok_psnr_db:
        return None
    return f"PSNR {psnr:.1f} dB < {ok_psnr_db:g} dB"


BELOW_BUNDLE_THRESHOLD = " (the bundle's threshold)"  # appended to a profile row's reason


def shown_status(row: dict, ok_psnr_db: Optional[float]) -> str:
    """A profile row's status as shown to people. Rows this edgegan writes carry ``degraded``
    themselves; an ``ok`` row from an earlier results.json below the bundle's threshold is shown
    as ``degraded`` too, as export calls it."""
    status = row.get("status") or "failed"
    if status == "ok" and below_threshold((row.get("quality") or {}).get("psnr_db"), ok_psnr_db):
        return "degraded"
    return status


def shown_reason(row: dict, ok_psnr_db: Optional[float]) -> str:
    """Why a row is not ``ok`` (empty when it is)."""
    if row.get("status") == "ok":
        reason = below_threshold((row.get("quality") or {}).get("psnr_db"), ok_psnr_db)
        return reason + BELOW_BUNDLE_THRESHOLD if reason else ""
    return str(row.get("reason") or "")


class ResultsLayout:
    """Where each file of a results folder lives."""

    RESULTS = "results.json"
    CSV = "results.csv"
    REPORT = "report.md"
    GRID = "grid.png"
    SAMPLES = "samples.npy"
    DEVICE_RESULTS = "device_results.json"
    PER_OP = "per_op.json"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def results(self) -> Path:
        return self.root / self.RESULTS

    @property
    def csv(self) -> Path:
        return self.root / self.CSV

    @property
    def report(self) -> Path:
        return self.root / self.REPORT

    @property
    def grid(self) -> Path:
        return self.root / self.GRID

    def format_dir(self, fmt: str) -> Path:
        if not fmt or "/" in fmt or "\\" in fmt or fmt in (".", ".."):
            raise ResultsError(f"format name {fmt!r} cannot name a results sub-folder")
        return self.root / fmt

    def samples(self, fmt: str) -> Path:
        return self.format_dir(fmt) / self.SAMPLES

    def per_op(self, fmt: str) -> Path:
        return self.format_dir(fmt) / self.PER_OP

    @classmethod
    def per_op_rel(cls, fmt: str) -> str:
        return f"{fmt}/{cls.PER_OP}"

    @classmethod
    def samples_rel(cls, fmt: str) -> str:
        """The samples path recorded in a row (relative to the results folder)."""
        return f"{fmt}/{cls.SAMPLES}"


@dataclasses.dataclass
class ArtifactRef(JsonConfig):
    path: Optional[str] = None
    sha256: Optional[str] = None
    bytes: Optional[int] = None


@dataclasses.dataclass
class ProfileRow(JsonConfig):
    """One (device, artifact) record. ``status`` ok rows carry the runner's measurements and the
    quality of the pulled samples; failed/incomplete rows carry ``reason``."""

    format: str
    status: str = "failed"
    reason: Optional[str] = None
    device: str = ""
    target: str = ""
    runtime: Optional[str] = None
    implementation: Optional[str] = None
    artifact: ArtifactRef = dataclasses.field(default_factory=ArtifactRef)
    latency_ms: Optional[dict] = None
    warmup: Optional[int] = None
    runs: Optional[int] = None
    threads: Optional[int] = None
    model_load_ms: Optional[float] = None
    first_inference_ms: Optional[float] = None
    peak_memory_mb: Optional[float] = None
    peak_memory_range_mb: Optional[list] = None
    memory_method: Optional[str] = None
    memory: Optional[dict] = None
    power: Optional[dict] = None
    thermal: Optional[dict] = None
    versions: Optional[dict] = None
    emulator: Optional[str] = None
    timer: Optional[str] = None
    runner_version: Optional[int] = None
    artifact_sha256: Optional[str] = None
    samples: Optional[str] = None
    quality: dict = dataclasses.field(default_factory=dict)
    seconds: Optional[float] = None
    resumed: bool = False
    disk_full: bool = False
    # ``profile --per-op`` (.pte): {"file": "<format>/per_op.json", "captured_on": ..., "note": ...}
    # or {"reason": why there is none}
    per_op: Optional[dict] = None
    # the browser runner: page load / model fetch ms, cross-origin isolation, user agent
    browser: Optional[dict] = None

    def validate(self) -> None:
        if self.status not in ROW_STATUSES:
            raise ConfigError(f"ProfileRow.status {self.status!r} is not one of {ROW_STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def measured(self) -> bool:
        """Ran on the device and has measurements and samples (ok or degraded)."""
        return self.status in MEASURED_STATUSES

    @property
    def p50_ms(self) -> Optional[float]:
        return (self.latency_ms or {}).get("p50")

    @property
    def psnr_db(self) -> Optional[float]:
        return self.quality.get("psnr_db")

    @property
    def samples_path(self) -> Optional[Path]:
        """Where this row's pulled samples are (known once the row belongs to a folder)."""
        folder = getattr(self, "_folder", None)
        return None if folder is None or not self.samples else ResultsLayout(folder).samples(self.format)

    def load_samples(self):
        """The outputs the device produced for the bundle's stored inputs (numpy array)."""
        p = self.samples_path
        if p is None or not p.is_file():
            raise ResultsError(f"'{self.format}' has no pulled samples ({self.status}: {self.reason}); re-run profile")
        from .util.npy import load_npy

        return load_npy(p, "pulled samples", ResultsError)


@dataclasses.dataclass
class ProfileRun(JsonConfig):
    """results.json: one profile run of one bundle on one target."""

    target: str
    run_id: str
    created: str
    complete: bool
    bundle: dict
    settings: dict
    results: list[ProfileRow] = dataclasses.field(default_factory=list)
    device: Optional[dict] = None
    schema: str = RESULTS_SCHEMA
    edgegan: str = ""

    def validate(self) -> None:
        if self.schema != RESULTS_SCHEMA:
            raise ConfigError(f"ProfileRun.schema {self.schema!r} is not {RESULTS_SCHEMA!r}")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["results"] = [r.to_dict() for r in self.results]
        return out

    def row(self, fmt: str) -> ProfileRow:
        for r in self.results:
            if r.format == fmt:
                return r
        raise ResultsError(f"no '{fmt}' row in this run (it has: {', '.join(r.format for r in self.results)})")

    def attach(self, folder: str | Path) -> "ProfileRun":
        """Tie the rows to the results folder they were read from (for their samples)."""
        for r in self.results:
            object.__setattr__(r, "_folder", Path(folder))
        return self

    @classmethod
    def parse(cls, data: Any, where: str) -> "ProfileRun":
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ResultsError(f"'{where}' is not a valid edgegan results file: {exc}") from None

    @classmethod
    def load(cls, folder: str | Path) -> "ProfileRun":
        path = ResultsLayout(folder).results if Path(folder).is_dir() else Path(folder)
        if not path.is_file():
            raise ResultsError(f"no {ResultsLayout.RESULTS} in '{folder}'; pass a folder `edgegan profile` wrote")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ResultsError(f"'{path}' is not valid JSON ({getattr(exc, 'msg', exc)}); rerun the profile") from None
        return cls.parse(data, str(path)).attach(path.parent)
