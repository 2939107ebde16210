"""CLI flags generated from config dataclasses, and config errors mapped back to flags.

The config dataclass is the only source of defaults: every generated flag defaults to None
(= "not given"), its help text comes from ``dataclasses.field(metadata={"help": ...})`` and
shows the dataclass default; a :class:`~edgegan.errors.ConfigError` naming a config field is
re-raised naming the flag that sets it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import typing
from typing import Any, Iterator

from ..util.text import split_csv


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _base_type(tp: Any) -> Any:
    """``Optional[X]`` -> X; other unions stay as they are."""
    if typing.get_origin(tp) is typing.Union or str(typing.get_origin(tp)) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def flag_name(f: dataclasses.Field) -> str | None:
    """The flag of a config field: ``metadata["flag"]`` (None = no flag) or ``--field-name``."""
    if "flag" in f.metadata:
        return f.metadata["flag"]
    return "--" + f.name.replace("_", "-")


def argument_kwargs(config_cls: type, f: dataclasses.Field) -> dict | None:
    """argparse keyword arguments for one field (None: the field cannot be a flag)."""
    tp = _base_type(typing.get_type_hints(config_cls)[f.name])
    default = field_default(f)
    help_ = f.metadata.get("help", f.name.replace("_", " "))
    if default is not False and default not in (None, dataclasses.MISSING, [], ()) and "(default" not in help_:
        help_ += f" (default {default})"
    kw: dict[str, Any] = {"default": None, "help": help_}
    if "choices" in f.metadata:
        kw["choices"] = list(f.metadata["choices"])
    if tp is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif tp in (int, float, str):
        kw["type"] = tp
    elif typing.get_origin(tp) in (list, tuple) and typing.get_args(tp)[:1] in ((str,), ()):
        kw["type"] = split_csv
    else:
        return None  # dicts and nested configs: JSON only
    if "metavar" in f.metadata:
        kw["metavar"] = f.metadata["metavar"]
    return kw


def given_values(args: argparse.Namespace, dests: dict[str, str]) -> dict[str, Any]:
    """config field -> value for every flag the user gave (dests: argparse dest -> field)."""
    return {field: getattr(args, dest) for dest, field in dests.items() if getattr(args, dest, None) is not None}


def add_config_arguments(p: Any, config_cls: type, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """One flag per field of ``config_cls`` (default None); returns argparse dest -> field."""
    dests = {}
    for f in dataclasses.fields(config_cls):
        flag = flag_name(f)
        kw = argument_kwargs(config_cls, f) if flag else None
        if f.name in skip or kw is None:
            continue
        action = p.add_argument(flag, **kw)
        dests[action.dest] = f.name
    return dests


def config_from_args(config_cls: type, args: argparse.Namespace, dests: dict[str, str], **extra: Any) -> Any:
    """``config_cls`` from the flags given (+ ``extra`` fields), dataclass defaults for the rest;
    config errors name the flag."""
    with flag_errors({field: "--" + dest.replace("_", "-") for dest, field in dests.items()}):
        return config_cls.from_dict({**given_values(args, dests), **extra})


@contextlib.contextmanager
def flag_errors(flags: dict[str, str]) -> Iterator[None]:
    """Re-raise a ConfigError about config field F as the same error naming its flag."""
    from ..errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        flag = flags.get(exc.field or "")
        if flag is None or flag in str(exc):
            raise
        raise type(exc)(f"{exc} (flag {flag})", field=exc.field) from None
