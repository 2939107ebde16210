"""Check a ``torch.export`` ``.pt2`` archive before torch reads it, so loading never runs code.

``torch.export.load`` unpickles (``weights_only=False``) every weight or constant its config
flags ``use_pickle``, falls back to a full unpickle when a legacy weights file or the stored
sample inputs fail a ``weights_only`` load, unpickles "opaque" constants and loads AOTInductor
shared libraries. A generator needs none of that, so the archive is read here first (zip
directory + JSON configs only) and refused unless every payload is a plain tensor and every
pickle-format entry loads with ``weights_only=True``.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from ..errors import CheckpointError

MAX_PT2_BYTES = 8 << 30  # uncompressed content; a generator's .pt2 is megabytes
_CODE_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia")
_PAYLOAD_PREFIXES = ("weight_", "tensor_")
_PICKLE_DIRS = ("data/weights/", "data/constants/", "data/sample_inputs/")


def _inner(name: str) -> str:
    """The archive path without its top folder (``model/data/weights/x`` -> ``data/weights/x``)."""
    return name.split("/", 1)[1] if "/" in name else name


def check_exported_program_archive(path: Path) -> None:
    """CheckpointError (one line, naming the entry) unless loading ``path`` with
    ``torch.export.load`` can only read tensors."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            if total > MAX_PT2_BYTES:
                raise CheckpointError(f"'{path}' claims {total:,} bytes uncompressed (limit {MAX_PT2_BYTES:,}); "
                                      "it is not a generator's ExportedProgram")
            for info in infos:
                _check_entry(zf, info, path)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"'{path}' is a corrupt ExportedProgram archive ({exc})") from None


def _refuse(path: Path, entry: str, why: str) -> CheckpointError:
    return CheckpointError(f"refusing ExportedProgram '{path}': {entry} {why}, which would run code when loaded; "
                           "re-save it with torch.export.save(torch.export.export(model, inputs), path)")


def _check_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> None:
    inner = _inner(info.filename)
    if inner.startswith(_CODE_DIRS):
        raise _refuse(path, info.filename, "is a compiled (AOTInductor/ExecuTorch) package")
    if inner.startswith(("data/weights/", "data/constants/")) and inner.endswith("config.json"):
        try:
            config = json.loads(zf.read(info)).get("config", {})
        except (ValueError, AttributeError):
            raise CheckpointError(f"'{path}': {info.filename} is not a JSON payload config; the archive is corrupt") from None
        if not isinstance(config, dict):
            raise CheckpointError(f"'{path}': {info.filename} is not a payload config; the archive is corrupt")
        for fqn, meta in config.items():
            if not isinstance(meta, dict):
                raise CheckpointError(f"'{path}': {info.filename} entry {fqn!r} is not an object; the archive is corrupt")
            if meta.get("use_pickle") is not False and meta.get("use_pickle") is not None:
                raise _refuse(path, f"'{fqn}' ({info.filename})", "is flagged use_pickle")
            name = meta.get("path_name")
            if not isinstance(name, str) or not name.startswith(_PAYLOAD_PREFIXES):
                raise _refuse(path, f"'{fqn}' ({info.filename})", f"is a Python object ({name!r}), not a tensor")
    elif inner.startswith(_PICKLE_DIRS) and inner.endswith(".pt"):
        _check_weights_only(zf, info, path)


def _check_weights_only(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> None:
    """torch retries these with ``weights_only=False`` when a safe load fails; make sure it never has to."""
    import pickle

    import torch

    try:
        torch.load(io.BytesIO(zf.read(info)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _refuse(path, info.filename, "holds Python objects beyond tensors") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for garbage
        raise CheckpointError(f"'{path}': {info.filename} is corrupt ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
