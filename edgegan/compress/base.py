"""The compression-method plugin contract and the pipeline that composes methods.

A method is a typed :class:`~edgegan.config.JsonConfig` plus ``apply(model, config) -> model``
registered by name in :data:`METHODS`. ``apply`` never mutates its input: it returns a new
:class:`~edgegan.models.LoadedModel` whose ``compression`` list has one more record
``{"method", "config", "stats"}`` (plain JSON), which is what the checkpoint, compression.json
and bundle.json carry. No torch at import time: methods import it inside ``apply``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, Callable

from ..config import JsonConfig
from ..errors import ConfigError
from ..registry import Registry


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered compression method."""

    name: str
    config_cls: type
    apply: Callable[[Any, JsonConfig], Any]
    description: str
    kind: str = "post-training"

    def tag(self, config: JsonConfig) -> str:
        """The short name part of a model compressed with ``config`` (``q4``, ``sp50``):
        ``config.tag()`` when the config class defines it, else the method name."""
        fn = getattr(config, "tag", None)
        return fn() if callable(fn) else self.name


METHODS: Registry[Method] = Registry("compression method")


def register_method(name: str, config_cls: type, description: str, kind: str = "post-training"):
    """Decorator: register ``apply(model, config) -> model`` as compression method ``name``."""

    def deco(fn):
        METHODS.add(name, Method(name, config_cls, fn, description, kind))
        return fn

    return deco


def method_config(name: str, config: JsonConfig | dict | None = None) -> JsonConfig:
    """The typed config of method ``name`` from an instance, a dict, or defaults."""
    method = METHODS.get(name)
    if config is None:
        return method.config_cls()
    if isinstance(config, method.config_cls):
        return config
    if isinstance(config, dict):
        return method.config_cls.from_dict(config)
    raise ConfigError(
        f"config for '{name}' is a {type(config).__name__}; pass a {method.config_cls.__name__} or a dict"
    )


def apply_method(model: Any, name: str, config: JsonConfig | dict | None = None) -> Any:
    """Apply one registered method; returns a new LoadedModel with the record appended."""
    cfg = method_config(name, config)
    return METHODS.get(name).apply(model, cfg)


@dataclasses.dataclass
class PipelineStep(JsonConfig):
    """One step: a method name and its config (validated against the method's config class)."""

    method: str
    config: dict = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        method_config(self.method, self.config)  # unknown method / bad field -> ConfigError

    def typed_config(self) -> JsonConfig:
        return method_config(self.method, self.config)


@dataclasses.dataclass
class PipelineConfig(JsonConfig):
    """Ordered compression steps. JSON: ``[{"method": ..., "config": {...}}, ...]`` or
    ``{"steps": [...]}``."""

    steps: list[PipelineStep] = dataclasses.field(default_factory=list)

    def validate(self) -> None:
        if not self.steps:
            raise ConfigError("compression pipeline has no steps; add at least one {\"method\": ..., \"config\": {...}}")

    @classmethod
    def from_dict(cls, data: Any) -> "PipelineConfig":
        if isinstance(data, list):
            data = {"steps": data}
        return super().from_dict(data)

    @classmethod
    def of(cls, *steps: tuple[str, JsonConfig | dict]) -> "PipelineConfig":
        """``PipelineConfig.of(("clip", ClipConfig(...)), ("quant", {"bits": 4}))``."""
        out = []
        for name, cfg in steps:
            out.append(PipelineStep(name, method_config(name, cfg).to_dict()))
        return cls(out)

    def to_json(self, indent: int = 2) -> str:
        return json.dumps([s.to_dict() for s in self.steps], indent=indent)


def compress(model: Any, pipeline: PipelineConfig | list | dict) -> Any:
    """Run every step of ``pipeline`` in order; each step sees the previous step's output."""
    if not isinstance(pipeline, PipelineConfig):
        pipeline = PipelineConfig.from_dict(pipeline)
    for step in pipeline.steps:
        model = apply_method(model, step.method, step.typed_config())
    return model


def derive(model: Any, module: Any, method: str, config: JsonConfig, stats: dict,
           family_config: dict | None = None) -> Any:
    """A new LoadedModel with ``module`` (and a new family config) and one more record."""
    record = {"method": method, "config": config.to_dict(), "stats": stats}
    json.dumps(record)  # records must stay plain JSON: fail here, not in bundle.json
    changes: dict[str, Any] = {"module": module, "compression": [*copy.deepcopy(model.compression), record]}
    if family_config is not None:
        changes["config"] = family_config
    return dataclasses.replace(model, **changes)


def copy_module(model: Any) -> Any:
    """A deep copy of the model's module in eval mode: methods never touch their input."""
    module = copy.deepcopy(model.module)
    module.eval()
    return module


def records_of(model: Any, method: str) -> list[dict]:
    return [r for r in model.compression if isinstance(r, dict) and r.get("method") == method]
