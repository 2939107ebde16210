"""The bundle: one folder + ``bundle.json``, the unit that travels from export to a device.

Layout::

    bundle.json      manifest (schema below)
    inputs.npy       stored inputs (latents or images), float32 [N, ...]
    reference.npy    float torch outputs for those inputs, float32 [N, C, H, W]
    calibration.npy  the calibration inputs the quantizers saw
    artifacts/       model.onnx, model_ort_int8.onnx, model_fp32.tflite, ...

A bundle is written into a temporary sibling directory and renamed into place only when
complete, so a failed export never leaves a half-written bundle behind.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import BundleError, OutputError

SCHEMA_VERSION = 1
MANIFEST = "bundle.json"
INPUTS = "inputs.npy"
REFERENCE = "reference.npy"
CALIBRATION = "calibration.npy"
ARTIFACTS_DIR = "artifacts"
STATUSES = ("ok", "degraded", "failed")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclasses.dataclass
class ArtifactRecord:
    """One row of the bundle: a format's artifact, how it was made and how faithful it is."""

    format: str
    status: str
    reason: Optional[str] = None
    path: Optional[str] = None
    sha256: Optional[str] = None
    bytes: Optional[int] = None
    size_ratio: Optional[float] = None
    runtime: Optional[str] = None
    tool: Optional[str] = None
    tool_version: Optional[str] = None
    convert_seconds: Optional[float] = None
    quantization: dict = dataclasses.field(default_factory=dict)
    rewrites: list = dataclasses.field(default_factory=list)
    io: dict = dataclasses.field(default_factory=dict)
    fidelity: dict = dataclasses.field(default_factory=dict)
    host_latency_ms: dict = dataclasses.field(default_factory=dict)
    notes: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ArtifactRecord":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise BundleError(f"artifact record has unknown fields {sorted(unknown)}; the bundle is from a newer edgegan")
        if data.get("status") not in STATUSES:
            raise BundleError(f"artifact record status {data.get('status')!r} is not one of {STATUSES}")
        return cls(**data)


def _check_writable(parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory '{parent}' ({exc.strerror}); choose a writable --out") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output directory '{parent}' is not writable; choose another --out or fix its permissions")


def os_error_to_edgegan(exc: OSError, where: Path) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"disk full while writing '{where}'; free space or pass --out on another disk")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write '{where}' ({exc.strerror}); choose a writable --out")
    return OutputError(f"cannot write '{where}' ({exc.strerror or exc}); check the output location")


class BundleWriter:
    """Context manager that builds a bundle in a temp dir and renames it into ``final`` on
    success. On any exception the temp dir is removed and ``final`` is left untouched."""

    def __init__(self, final: Path, overwrite: bool = False) -> None:
        self.final = Path(final).absolute()
        self.overwrite = overwrite
        self.tmp: Optional[Path] = None

    def __enter__(self) -> "BundleWriter":
        _check_writable(self.final.parent)
        if self.final.exists() and not self.overwrite:
            raise OutputError(f"'{self.final}' already exists; pass --force to replace it or choose another --out")
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", suffix=".partial", dir=self.final.parent))
            (self.tmp / ARTIFACTS_DIR).mkdir()
        except OSError as exc:
            raise os_error_to_edgegan(exc, self.final.parent) from None
        return self

    @property
    def artifacts(self) -> Path:
        assert self.tmp is not None
        return self.tmp / ARTIFACTS_DIR

    def save_array(self, name: str, array: np.ndarray) -> None:
        assert self.tmp is not None
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        try:
            with open(self.tmp / name, "wb") as fh:  # plain write: a full disk raises ENOSPC
                fh.write(buf.getbuffer())
        except OSError as exc:
            raise os_error_to_edgegan(exc, self.final) from None

    def write_manifest(self, manifest: dict) -> None:
        assert self.tmp is not None
        try:
            (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        except OSError as exc:
            raise os_error_to_edgegan(exc, self.final) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            if self.final.exists():
                trash = self.final.with_name(f".{self.final.name}.old")
                shutil.rmtree(trash, ignore_errors=True)
                os.replace(self.final, trash)
                os.replace(self.tmp, self.final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(self.tmp, self.final)
        except OSError as exc:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise os_error_to_edgegan(exc, self.final) from None


@dataclasses.dataclass
class Bundle:
    """A bundle on disk, loaded and validated (no torch needed)."""

    root: Path
    manifest: dict

    @classmethod
    def load(cls, root: str | Path) -> "Bundle":
        root = Path(root)
        mf = root / MANIFEST
        if not mf.is_file():
            raise BundleError(f"'{root}' is not a bundle (no {MANIFEST}); pass the directory `edgegan export` wrote")
        try:
            manifest = json.loads(mf.read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(f"'{mf}' is not valid JSON ({exc.msg}); re-run edgegan export") from None
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(f"bundle schema_version {version} is not supported (expected {SCHEMA_VERSION}); re-export it")
        b = cls(root, manifest)
        b.artifact_records()  # validates the rows
        return b

    def artifact_records(self) -> list[ArtifactRecord]:
        return [ArtifactRecord.from_dict(a) for a in self.manifest.get("artifacts", [])]

    def artifact(self, fmt: str) -> ArtifactRecord:
        for rec in self.artifact_records():
            if rec.format == fmt:
                return rec
        have = ", ".join(r.format for r in self.artifact_records())
        raise BundleError(f"bundle has no '{fmt}' artifact (it has: {have}); re-export with --formats {fmt}")

    def artifact_path(self, rec: ArtifactRecord) -> Path:
        if rec.path is None:
            raise BundleError(f"'{rec.format}' has no artifact file ({rec.status}: {rec.reason})")
        p = (self.root / rec.path).resolve()
        if self.root.resolve() not in p.parents:
            raise BundleError(f"artifact path {rec.path!r} escapes the bundle; the manifest is corrupt")
        return p

    def inputs(self) -> np.ndarray:
        return np.load(self.root / INPUTS, allow_pickle=False)

    def reference(self) -> np.ndarray:
        return np.load(self.root / REFERENCE, allow_pickle=False)

    def verify_hashes(self) -> list[str]:
        """Formats whose artifact file is missing or differs from its recorded sha256."""
        bad = []
        for rec in self.artifact_records():
            if rec.path is None:
                continue
            p = self.root / rec.path
            if not p.is_file() or sha256_file(p) != rec.sha256:
                bad.append(rec.format)
        return bad
