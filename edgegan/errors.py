"""One exception tree for the whole library.

Library code raises these; only the CLI turns them into exit codes. Every message is meant to
be a single line that names the problem and what to do about it.
"""
from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class EdgeganError(Exception):
    """Base of every error edgegan raises on purpose."""

    exit_code = 1


class ConfigError(EdgeganError):
    """A config value, CLI option or name is invalid. ``field`` names the config field at
    fault (when one is), so the CLI can name the flag that sets it."""

    exit_code = 2

    def __init__(self, message: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownNameError(ConfigError):
    """A registry lookup (model, format, metric, target) failed."""


class CheckpointError(EdgeganError):
    """A weights / model file is missing, unreadable, unsafe or does not match the model."""

    exit_code = 3


class InputSpecError(EdgeganError):
    """Inputs do not match the model's input spec (shape, dtype, range)."""

    exit_code = 2


class ExportError(EdgeganError):
    """torch -> ONNX export or its validation failed."""

    exit_code = 4


class ConversionError(EdgeganError):
    """A converter could not produce its artifact (recorded as a failed row, not fatal)."""

    exit_code = 5


class ArtifactRunError(EdgeganError):
    """A converted artifact cannot be loaded or run on this machine (runtime missing, file
    corrupt or rejected by the runtime)."""

    exit_code = 5


class BundleError(EdgeganError):
    """A bundle cannot be written, read or validated."""

    exit_code = 6


class OutputError(BundleError):
    """The output location is not writable or the disk is full."""


class ResultsError(EdgeganError):
    """A profile results folder cannot be read (missing, not JSON, wrong schema or types)."""

    exit_code = 6


class DeviceError(EdgeganError):
    """A target device could not be reached or a run on it failed."""

    exit_code = 7


class MetricError(EdgeganError):
    """A metric cannot be computed on the given samples."""

    exit_code = 8


class MissingDependencyError(EdgeganError):
    """An optional package a stage needs (torch, onnx, onnxruntime, tensorflow, paramiko) is
    not installed; the message names the extra that installs it."""

    exit_code = 9


class InstallError(MissingDependencyError):
    """`edgegan setup` could not install a tool set (pip failed or is missing, or a package the
    set builds on is not installed); the tools are still missing, hence the same exit code."""


def strip_ansi(text: str) -> str:
    """Tool output without terminal colour codes."""
    return _ANSI.sub("", text)


def first_line(exc: BaseException, limit: int = 200, default: str | None = None) -> str:
    """The first line of an exception's message, uncoloured and capped, for one-line errors
    and failed-row reasons (``default``, else the exception type, when the message is empty)."""
    lines = strip_ansi(str(exc)).strip().splitlines()
    return (lines[0] if lines else (type(exc).__name__ if default is None else default))[:limit]


class ModelFactoryError(ConfigError):
    """User code that builds the model (a ``module:factory``, a class, its ``eval``) raised; the
    message names the factory and the original error (exit code of a usage error)."""
