"""The sweep spec: models x compression pipelines x formats x targets, plus how to run and
what to measure. One typed dataclass tree that round-trips JSON (YAML reads into the same
tree), so a sweep is a file that can be replayed, diffed and resumed."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Optional

from ..compress.base import PipelineStep
from ..config import JsonConfig
from ..errors import ConfigError

SCHEMA_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name or ""):
        raise ConfigError(f"{kind} name {name!r} must be letters, digits, '_', '.', '+' or '-'; rename it in the spec")


@dataclasses.dataclass
class ModelEntry(JsonConfig):
    """A model to sweep: a zoo name / ``package.module:factory`` / model file, plus an optional
    checkpoint (its bytes go into the job keys, so a retrained checkpoint is a new job)."""

    name: str
    model: str = ""  # default: the same as name
    checkpoint: Optional[str] = None
    config: dict = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        _check_name("model", self.name)

    @property
    def spec(self) -> str:
        return self.model or self.name


@dataclasses.dataclass
class PipelineEntry(JsonConfig):
    """A named compression pipeline; no steps = the float model."""

    name: str
    steps: list[PipelineStep] = dataclasses.field(default_factory=list)
    labels: dict = dataclasses.field(default_factory=dict)  # free columns copied into every result row

    def validate(self) -> None:
        _check_name("pipeline", self.name)


@dataclasses.dataclass
class TargetEntry(JsonConfig):
    """A physical device (or ``local``): one concurrency slot in the sweep."""

    url: str
    name: Optional[str] = None
    identity: Optional[str] = None
    known_hosts: Optional[str] = None
    python: Optional[str] = None
    workdir: Optional[str] = None

    def validate(self) -> None:
        if not (self.url == "local" or self.url.startswith(("ssh://", "adb://"))):
            raise ConfigError(f"target {self.url!r} is not local, ssh://user@host[:port] or adb://serial")
        if self.name is not None:
            _check_name("target", self.name)

    @property
    def label(self) -> str:
        return self.name or self.url

    def options(self) -> dict:
        return {k: v for k, v in (("identity", self.identity), ("known_hosts", self.known_hosts),
                                  ("python", self.python), ("workdir", self.workdir)) if v is not None}


@dataclasses.dataclass
class RunSettings(JsonConfig):
    """How each artifact is measured on a target (profile options)."""

    runs: int = 20
    warmup: int = 3
    threads: int = 1
    memory: bool = False
    timeout_s: float = 900.0

    def validate(self) -> None:
        if self.runs < 1 or self.warmup < 0 or self.threads < 1:
            raise ConfigError(f"runs must be >= 1, warmup >= 0, threads >= 1; got {self.runs}/{self.warmup}/{self.threads}")


@dataclasses.dataclass
class ExportSettings(JsonConfig):
    """Export options shared by every (model, pipeline) job."""

    n_inputs: int = 16
    input_seed: int = 0
    calibration: int = 32
    calibration_seed: int = 0
    threads: int = 1
    latency_rounds: int = 1  # the host latency in the bundle; devices are timed by the profile jobs
    latency_runs: int = 1


@dataclasses.dataclass
class QualitySettings(JsonConfig):
    """Quality of each compressed model against the uncompressed one and against real data,
    computed in torch by the export job (the post-training sweep's measure: what compression
    does, before any format): PSNR vs the float model on ``samples`` latents (``seed``), and
    precision/recall (``metrics``) of the ``extractor``'s features vs the ``real`` dataset and
    vs the float model's own samples on other latents (``reference_seed``); a sample grid."""

    samples: int = 2000
    seed: int = 1001
    reference_seed: int = 2002
    extractor: str = "digits"
    real: str = "digits"  # a dataset of edgegan.datasets; "" = no comparison with real data
    metrics: list[str] = dataclasses.field(default_factory=lambda: ["lsh", "knn"])
    grid: int = 64  # samples in the grid PNG (8 per row); 0 = no grid

    def validate(self) -> None:
        if self.samples < 2 or self.grid < 0:
            raise ConfigError(f"quality.samples must be >= 2 and quality.grid >= 0; got {self.samples}/{self.grid}")
        if self.real not in ("", "digits"):
            raise ConfigError(f"quality.real {self.real!r} is not a known dataset; use 'digits' or ''")

    def references(self) -> list[str]:
        return (["real"] if self.real else []) + ["float"]


@dataclasses.dataclass
class SweepSpec(JsonConfig):
    """Everything a sweep runs. ``metrics``: keys of the compare step's quality/paired results
    copied into each row (e.g. psnr_db, lsh_precision, knn_recall); empty = no compare step."""

    name: str
    models: list[ModelEntry]
    pipelines: list[PipelineEntry] = dataclasses.field(default_factory=lambda: [PipelineEntry("float")])
    formats: list[str] = dataclasses.field(default_factory=lambda: ["onnx"])
    targets: list[TargetEntry] = dataclasses.field(default_factory=lambda: [TargetEntry("local")])
    runs: RunSettings = dataclasses.field(default_factory=RunSettings)
    export: ExportSettings = dataclasses.field(default_factory=ExportSettings)
    metrics: list[str] = dataclasses.field(default_factory=lambda: ["psnr_db", "lsh_precision", "lsh_recall"])
    quality: Optional[QualitySettings] = None  # host-side quality vs the uncompressed model (post-training view)
    schema_version: int = SCHEMA_VERSION

    def validate(self) -> None:
        _check_name("sweep", self.name)
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(f"sweep spec schema_version {self.schema_version} is not {SCHEMA_VERSION}; "
                              "rewrite the spec for this edgegan")
        for kind, items, key in (("model", self.models, "name"), ("pipeline", self.pipelines, "name"),
                                 ("target", self.targets, "label"), ("format", self.formats, None)):
            if not items:
                raise ConfigError(f"the sweep spec lists no {kind}s; add at least one")
            names = [getattr(i, key) if key else i for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ConfigError(f"{kind} {dup[0]!r} appears twice in the sweep spec; give each a unique name")
        from ..converters import CONVERTERS

        unknown = [f for f in self.formats if f not in CONVERTERS]
        if unknown:
            raise ConfigError(f"unknown format {unknown[0]!r} in the sweep spec; known: {', '.join(CONVERTERS)}")

    def to_dict(self) -> dict:
        # nested lists of configs: JsonConfig.to_dict only unwraps direct JsonConfig fields
        d = json.loads(json.dumps(dataclasses.asdict(self)))
        if d.get("quality") is None:
            d.pop("quality", None)  # specs without it keep their earlier form (and job keys)
        return d


def load_spec(path: str | Path) -> SweepSpec:
    """A spec from ``.json`` or ``.yaml``/``.yml`` (YAML needs PyYAML, which the [ray] extra brings)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read sweep spec {p}: {exc.strerror}; check the path") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{p} is YAML but PyYAML is not installed; pip install 'edgegan[ray]' or use JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
        return SweepSpec.from_dict(data)
    return SweepSpec.from_json(text)
