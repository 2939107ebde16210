"""`edgegan benchmark MODEL`: export (or reuse a bundle) -> profile on each target -> compare ->
report, and one table of format x target at the end (status, PSNR, size, p50, vs the fastest
float artifact on that target), as `yolo benchmark` gives for detectors.

The compare step is profile's own (``ProfileConfig.compare``): every pulled sample set is scored
against the bundle's float samples with the same metrics as `edgegan compare` (paired PSNR,
LSH / kNN precision-recall), so no samples are re-read here.

Layout of ``out``::

    bundle/                 the exported bundle (reused when it holds MODEL and every format asked for)
    <target>/               one profile results folder per target (results.json, report.html, ...)
    benchmark.json          the final table (BenchmarkRow per format x target)
    report.html             bundle + every target side by side
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Callable, Optional

from .config import JsonConfig
from .errors import ConfigError

BENCHMARK_SCHEMA = "edgegan.benchmark/1"
ProgressFn = Callable[[str, str], None]  # (stage, message)


@dataclasses.dataclass
class BenchmarkConfig(JsonConfig):
    """One benchmark: what to export, where to run it, how long to time it."""

    model: str = dataclasses.field(default="", metadata={"help": "zoo name or anything `edgegan export` takes, "
                                                                  "or an existing bundle folder to reuse"})
    targets: list[str] = dataclasses.field(default_factory=lambda: ["local"], metadata={
        "help": "comma-separated targets: local, ssh://user@host[:port]"})
    formats: Optional[list[str]] = dataclasses.field(default=None, metadata={"help": "formats (default: all)"})
    out: str = dataclasses.field(default="", metadata={"help": "benchmark folder (default benchmarks-out/<model>)"})
    runs: int = dataclasses.field(default=50, metadata={"help": "timed runs per format and target"})
    warmup: int = dataclasses.field(default=10, metadata={"help": "untimed warmup runs"})
    threads: int = dataclasses.field(default=2, metadata={"help": "runtime threads"})
    memory: bool = dataclasses.field(default=True, metadata={"help": "measure peak memory (child processes)"})
    force: bool = dataclasses.field(default=False, metadata={"help": "re-export even when out/bundle fits"})
    export_options: dict = dataclasses.field(default_factory=dict)  # extra ExportConfig fields (n_inputs, ...)

    def validate(self) -> None:
        if not self.model:
            raise ConfigError("say what to benchmark: a MODEL (see `edgegan models`) or a bundle folder", field="model")
        if not self.targets:
            raise ConfigError("give at least one target, e.g. --targets local", field="targets")
        # checked here, before an export that may take minutes, with the rules profile applies
        for name, low in (("runs", 1), ("warmup", 0), ("threads", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"benchmark {name} must be >= {low}, got {getattr(self, name)}", field=name)

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("benchmarks-out") / Path(self.model).name


@dataclasses.dataclass
class BenchmarkRow(JsonConfig):
    """One (format, target) cell of the final table."""

    format: str
    target: str
    status: str
    psnr_db: Optional[float] = None
    exact: bool = False
    bytes: Optional[int] = None
    p50_ms: Optional[float] = None
    vs_fastest_float: Optional[float] = None
    reason: str = ""


def target_folder(target: str) -> str:
    """A folder name for a target: ``ssh://pi@10.0.0.2:22`` -> ``ssh-pi-10.0.0.2-22``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", target.replace("://", "-")).strip("-.")
    return name or "target"


def _bundle_fits(path: Path, model: str, formats: Optional[list[str]]) -> bool:
    from .bundle import Bundle
    from .errors import EdgeganError

    try:
        b = Bundle.load(path)
    except EdgeganError:
        return False
    recorded = (b.manifest.export_config or {}).get("model")
    have = {r.format for r in b.artifact_records()}
    return recorded == model and (formats is None or set(formats) <= have)


def _bundle(cfg: BenchmarkConfig, say: ProgressFn) -> Path:
    """The bundle to profile: MODEL itself when it is one, out/bundle when it fits, else a new export."""
    from .pipeline import ExportConfig, run_export

    given = Path(cfg.model)
    if (given / "bundle.json").is_file():
        say("export", f"reusing bundle {given}")
        return given
    path = cfg.out_dir() / "bundle"
    if not cfg.force and _bundle_fits(path, cfg.model, cfg.formats):
        say("export", f"reusing {path} (same model and formats; --force re-exports)")
        return path
    say("export", f"exporting {cfg.model} to {path}")
    fields = {**cfg.export_options, "model": cfg.model, "out": str(path), "overwrite": True}
    if cfg.formats:
        fields["formats"] = list(cfg.formats)
    out, _ = run_export(ExportConfig.from_dict(fields))
    return Path(out)


def final_rows(bundle, runs: list[tuple[str, dict]]) -> list[BenchmarkRow]:
    """The format x target table from the bundle and each target's results.json."""
    from .pipeline import float_of_runtime
    from .results import MEASURED_STATUSES, ok_psnr_db_of, shown_reason, shown_status

    floats = set(float_of_runtime().values())
    sizes = {r.format: r.bytes for r in bundle.artifact_records()}
    rows = []
    for target, doc in runs:
        thr = ok_psnr_db_of(doc)
        measured = [r for r in doc["results"] if r.get("status") in MEASURED_STATUSES]
        fastest = min(((r.get("latency_ms") or {}).get("p50") for r in measured if r["format"] in floats
                       and (r.get("latency_ms") or {}).get("p50")), default=None)
        for r in doc["results"]:
            q, lat = r.get("quality") or {}, r.get("latency_ms") or {}
            p50 = lat.get("p50")
            rows.append(BenchmarkRow(format=r["format"], target=target, status=shown_status(r, thr),
                                     psnr_db=q.get("psnr_db"), exact=bool(q.get("exact")), bytes=sizes.get(r["format"]),
                                     p50_ms=p50, vs_fastest_float=round(p50 / fastest, 3) if p50 and fastest else None,
                                     reason=shown_reason(r, thr)))
    return rows


def command_of(cfg: BenchmarkConfig) -> str:
    """The `edgegan benchmark` command line that repeats ``cfg``."""
    import shlex

    cmd = ["edgegan", "benchmark", cfg.model, "--targets", ",".join(cfg.targets)]
    if cfg.formats:
        cmd += ["--formats", ",".join(cfg.formats)]
    cmd += ["--runs", str(cfg.runs), "--warmup", str(cfg.warmup), "--threads", str(cfg.threads), "--out", str(cfg.out_dir())]
    if "n_inputs" in cfg.export_options:
        cmd += ["--inputs", str(cfg.export_options["n_inputs"])]
    if not cfg.memory:
        cmd.append("--no-memory")
    return shlex.join(cmd)


def run_benchmark(cfg: BenchmarkConfig, progress: Optional[ProgressFn] = None,
                  target_options=None) -> tuple[Path, list[BenchmarkRow]]:
    """Export -> profile on every target -> report; returns (report.html path, final rows)."""
    from .bundle import Bundle
    from .devices.profile import ProfileConfig, run_profile
    from .reports.html_report import HTML_FILENAME, ReportInputs, write_html
    from .util.files import atomic_write

    say = progress or (lambda stage, msg: None)
    out = cfg.out_dir()
    bundle_path = _bundle(cfg, say)
    bundle = Bundle.load(bundle_path)
    runs: list[tuple[str, dict]] = []
    folders: list[tuple[Path, dict]] = []
    for target in cfg.targets:
        folder = out / target_folder(target)
        say("profile", f"profiling on {target} -> {folder}")
        fields = {"bundle": str(bundle_path), "target": target, "formats": cfg.formats, "runs": cfg.runs,
                  "warmup": cfg.warmup, "threads": cfg.threads, "out": str(folder), "force": True,
                  "memory": cfg.memory, "compare": True}
        pcfg = ProfileConfig.from_dict(fields)
        if target_options is not None:
            pcfg = dataclasses.replace(pcfg, target_options=target_options)
        folder_, doc = run_profile(pcfg)
        runs.append((target, doc))
        folders.append((Path(folder_), doc))
    rows = final_rows(bundle, runs)
    atomic_write(out / "benchmark.json", json.dumps({
        "schema": BENCHMARK_SCHEMA, "config": cfg.to_dict(), "bundle": str(bundle_path),
        "results": {t: str(f) for (t, _), (f, _) in zip(runs, folders)},
        "rows": [r.to_dict() for r in rows]}, indent=2, allow_nan=False) + "\n")
    say("report", f"writing {out / HTML_FILENAME}")
    report = write_html(ReportInputs(bundles=[(bundle, None)], profiles=folders, benchmark=rows,
                                     benchmark_command=command_of(cfg)), out / HTML_FILENAME,
                        title=f"edgegan benchmark: {bundle.manifest.model.name} on {', '.join(cfg.targets)}")
    return report, rows
