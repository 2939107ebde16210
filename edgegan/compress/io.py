"""Writing a compressed generator: the edgegan checkpoint plus its own ``NAME.compression.json``.

Each checkpoint carries its records inside it (what ``edgegan export`` reads) and gets a record
file named after it, so several compress runs into one folder keep one record each.

Both files are written to temporary names in the target folder and renamed into place only
when both are complete, so a failure never leaves a half-written checkpoint or a record that
describes a checkpoint that is not there.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError, OutputError
from ..util.files import temp_path_beside
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


def save_compressed(model: Any, out: str | Path, record_path: Optional[str | Path] = None,
                    base: Optional[Any] = None, base_model: Optional[str] = None) -> tuple[Path, Path, dict]:
    """Write the checkpoint at ``out`` and its record (default: ``record_path_for(out)``).
    ``base``: the model ``model`` was compressed from (its uncompressed weights' sha256 goes into
    the checkpoint so export can compare against the base model too).

    Returns (checkpoint path, record path, record)."""
    from ..models.loading import save_checkpoint

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
    tmp_ckpt = tmp_rec = None
    try:
        tmp_ckpt = temp_path_beside(out)
        save_checkpoint(tmp_ckpt, model.module, model.family, model.config, model.name,
                        base_model=base_model, compression=model.compression,
                        base_weights_sha256=base_weights_of(base))
        data = tmp_ckpt.read_bytes()
        record["checkpoint"] = {"path": out.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        tmp_rec = temp_path_beside(record_path)
        tmp_rec.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp_ckpt, out)
        tmp_ckpt = None
        os.replace(tmp_rec, record_path)
        tmp_rec = None
    except OSError as exc:
        raise OutputError(f"cannot write '{out}' ({exc.strerror or exc}); check free space and permissions") from None
    finally:
        for leftover in (tmp_ckpt, tmp_rec):
            if leftover is not None:
                leftover.unlink(missing_ok=True)
    return out, record_path, record
