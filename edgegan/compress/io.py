"""Writing a compressed generator: the edgegan checkpoint plus its own ``NAME.compression.json``.

Each checkpoint carries its records inside it (what ``edgegan export`` reads) and gets a record
file named after it, so several compress runs into one folder keep one record each.

Both files are written to temporary names in the target folder and renamed into place only
when both are complete, so a failure never leaves a half-written checkpoint or a record that
describes a checkpoint that is not there.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError, OutputError
from ..util.files import temp_path_beside
from ..util.locks import FileLock, LockBusy
from .storage import storage_stats

RECORD_SCHEMA_VERSION = 1
RECORD_SUFFIX = ".compression.json"
RECORD_FILENAME = "compression.json"  # the one shared file earlier versions wrote; export never needed it
# (it reads the records inside the checkpoint), so folders written before keep working


def record_path_for(checkpoint: str | Path) -> Path:
    """The record file of ``checkpoint``: ``dir/q.pt`` -> ``dir/q.compression.json``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + RECORD_SUFFIX)


def model_summary(model: Any) -> dict[str, Any]:
    """Params, MACs (one sample), sizes and sparsity of a (compressed) LoadedModel."""
    from ..models.stats import count_macs

    out = storage_stats(model.module, model.compression)
    out["macs"] = count_macs(model.module, model.sample_inputs(1, 0))
    return out


def compression_record(model: Any, base: Optional[Any] = None, base_model: Optional[str] = None) -> dict[str, Any]:
    """The content of compression.json for ``model`` (``base``: the uncompressed model)."""
    record = {
        "schema_version": RECORD_SCHEMA_VERSION,
        "name": model.name,
        "base_model": base_model,
        "family": model.family,
        "config": model.config,
        "pipeline": [{"method": r["method"], "config": r["config"]} for r in model.compression],
        "records": model.compression,
        "summary": model_summary(model),
        "base_summary": model_summary(base) if base is not None else None,
        "notes": [
            "packed_bytes: k bits per quantized weight, sparse bitmap where smaller (edgegan.compress.storage)",
            "float_bytes / file sizes: what the float32 checkpoint and exported ONNX really take",
        ],
    }
    json.dumps(record)
    return record


def base_weights_of(base: Optional[Any]) -> Optional[str]:
    """sha256 of the uncompressed weights behind ``base``: its own when it is not compressed,
    else what its checkpoint recorded (kept through repeated compression)."""
    if base is None:
        return None
    if not base.compression:
        from ..models.stats import weights_sha256

        return weights_sha256(base.module)
    return getattr(base, "base_weights_sha256", None)


def checkpoint_bytes(model: Any, base: Optional[Any] = None, base_model: Optional[str] = None) -> bytes:
    """The edgegan checkpoint of ``model`` serialised in memory (a generator is megabytes), so
    writing it to disk is one plain write whose errors are ordinary OSErrors."""
    from ..models.loading import save_checkpoint

    buf = io.BytesIO()
    save_checkpoint(buf, model.module, model.family, model.config, model.name,
                    base_model=base_model, compression=model.compression,
                    base_weights_sha256=base_weights_of(base))
    return buf.getvalue()


def _temp_pattern(name: str) -> "re.Pattern[str]":
    """Names :func:`temp_path_beside` gives temp files of ``name`` (mkstemp adds 8 characters)."""
    return re.compile(rf"\.{re.escape(name)}\.[A-Za-z0-9_]{{8}}\.tmp")


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files a killed writer of ``path`` left beside it (call holding its lock)."""
    pattern, removed = _temp_pattern(path.name), []
    for p in path.parent.iterdir():
        if pattern.fullmatch(p.name) and p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def _writer_locks(*paths: Path):
    """flock ``.NAME.lock`` beside each path: one writer at a time (a second fails at once), and
    the holder may delete temp files of the same name (their writer is dead)."""
    locks: list[FileLock] = []
    try:
        for path in dict.fromkeys(p.absolute() for p in paths):
            try:
                locks.append(FileLock(path.with_name(f".{path.name}.lock")).acquire())
            except LockBusy as exc:
                raise OutputError(f"another edgegan process (pid {exc.holder or '?'}) is writing '{path}'; "
                                  "wait for it to finish or choose another --out") from None
            except OSError as exc:
                raise _write_error(exc, path) from None
        yield
    finally:
        for lock in reversed(locks):
            lock.release(unlink=True)


def _write_error(exc: OSError, out: Path) -> OutputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"disk full while writing '{out}'; nothing was written: free space or choose --out on another disk")
    if exc.errno == errno.EFBIG:
        return OutputError(f"'{out}' would exceed the file size limit (ulimit -f); nothing was written: raise the limit")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        path = exc.filename or out
        return OutputError(f"cannot write '{path}' ({exc.strerror}); choose a writable location")
    return OutputError(f"cannot write '{out}' ({exc.strerror or exc}); check free space and permissions")


def check_output_path(path: str | Path, flag: str) -> None:
    """Refuse up front (before any model is loaded) an output file ``flag`` could not be
    written to: a directory, or a folder (or its nearest existing ancestor) where a file cannot
    be created. Tries a real temp file, so a read-only mount is caught even for root."""
    import tempfile

    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag} '{path}' is a directory; give a file name, e.g. {path / 'model.pt'}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{flag} '{path}': '{folder}' is not a folder; choose another {flag}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgegan-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{flag} '{path}' cannot be written: folder '{folder}' is not writable "
                          f"({exc.strerror}); choose a writable {flag}") from None


def save_compressed(model: Any, out: str | Path, record_path: Optional[str | Path] = None,
                    base: Optional[Any] = None, base_model: Optional[str] = None) -> tuple[Path, Path, dict]:
    """Write the checkpoint at ``out`` and its record (default: ``record_path_for(out)``).
    ``base``: the model ``model`` was compressed from (its uncompressed weights' sha256 goes into
    the checkpoint so export can compare against the base model too).

    Returns (checkpoint path, record path, record)."""
    if model.family is None or model.config is None:
        raise ConfigError(f"'{model.name}' has no zoo family/config, so it cannot be saved as an edgegan "
                          "checkpoint; compress a zoo model or an edgegan checkpoint")
    out = Path(out)
    record_path = Path(record_path) if record_path is not None else record_path_for(out)
    if out.is_dir():
        raise OutputError(f"--out '{out}' is a directory; give the checkpoint file name, e.g. {out / 'model.pt'}")
    for folder in {out.parent, record_path.parent}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder '{folder}' ({exc.strerror}); choose a writable --out") from None
    record = compression_record(model, base, base_model)
    data = checkpoint_bytes(model, base, base_model)
    record["checkpoint"] = {"path": out.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with _writer_locks(out, record_path):
        remove_stale_temps(out)
        remove_stale_temps(record_path)
        tmp_ckpt = tmp_rec = None
        try:
            tmp_ckpt = temp_path_beside(out)
            with open(tmp_ckpt, "wb") as fh:  # plain writes: a full disk raises ENOSPC (EFBIG past a size limit)
                fh.write(data)
            tmp_rec = temp_path_beside(record_path)
            with open(tmp_rec, "w") as fh:
                fh.write(json.dumps(record, indent=2) + "\n")
            os.replace(tmp_ckpt, out)
            tmp_ckpt = None
            os.replace(tmp_rec, record_path)
            tmp_rec = None
        except OSError as exc:
            raise _write_error(exc, out) from None
        finally:
            for leftover in (tmp_ckpt, tmp_rec):
                if leftover is not None:
                    leftover.unlink(missing_ok=True)
    return out, record_path, record
