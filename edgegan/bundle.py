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
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .config import JsonConfig
from .errors import BundleError, ConfigError, EdgeganError, OutputError
from .runner.edgegan_runner import file_sha256 as sha256_file  # the runner's, so host and device hash alike
from .util.locks import FileLock, LockBusy
from .util.files import usual_mode

SCHEMA_VERSION = 2  # 2: model.output_range (the PSNR peak); 1 still loads, its range assumed [-1, 1]
READABLE_SCHEMAS = (1, 2)
MANIFEST = "bundle.json"
INPUTS = "inputs.npy"
REFERENCE = "reference.npy"
CALIBRATION = "calibration.npy"
ARTIFACTS_DIR = "artifacts"
STATUSES = ("ok", "degraded", "failed")
MAX_MANIFEST_BYTES = 16 << 20


@dataclasses.dataclass
class ArtifactRecord(JsonConfig):
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

    def validate(self) -> None:
        if self.status not in STATUSES:
            raise BundleError(f"artifact record status {self.status!r} is not one of {STATUSES}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> "ArtifactRecord":
        if isinstance(data, dict):
            unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise BundleError(f"artifact record has unknown fields {sorted(unknown)}; the bundle is from a newer edgegan")
        try:
            return super().from_dict(data)
        except ConfigError as exc:
            raise BundleError(f"artifact record {data.get('format') if isinstance(data, dict) else '?'}: {exc}") from None


@dataclasses.dataclass
class ModelInfo(JsonConfig):
    """Which generator the bundle holds (``weights_sha256`` identifies its float weights)."""

    name: str
    source: str = ""
    family: Optional[str] = None
    config: Optional[dict] = None
    weights_sha256: Optional[str] = None
    params: Optional[int] = None
    macs: Optional[int] = None
    output_range: Optional[dict] = None  # OutputRange (lo, hi, source, detail); None in schema-1 bundles


@dataclasses.dataclass
class StoredArray(JsonConfig):
    """A .npy file stored in the bundle (inputs, reference, calibration)."""

    file: str
    count: Optional[int] = None
    producer: Optional[str] = None
    source: Optional[str] = None
    method: Optional[str] = None


@dataclasses.dataclass
class Manifest(JsonConfig):
    """bundle.json: the contract between export and every later stage. Written by the export,
    read (and validated) by :meth:`Bundle.load`; nothing else parses bundle.json."""

    schema_version: int
    model: ModelInfo
    input: dict
    output: dict
    inputs: StoredArray
    reference: StoredArray
    artifacts: list[ArtifactRecord]
    created: str = ""
    seeds: dict = dataclasses.field(default_factory=dict)
    calibration: Optional[StoredArray] = None
    compression: list = dataclasses.field(default_factory=list)
    export: dict = dataclasses.field(default_factory=dict)
    thresholds: dict = dataclasses.field(default_factory=dict)
    export_config: dict = dataclasses.field(default_factory=dict)
    tools: dict = dataclasses.field(default_factory=dict)
    host: dict = dataclasses.field(default_factory=dict)
    artifacts_dir: str = ARTIFACTS_DIR

    def validate(self) -> None:
        if self.schema_version not in READABLE_SCHEMAS:
            raise BundleError(f"bundle schema_version {self.schema_version} is not supported (expected "
                              f"{SCHEMA_VERSION}); re-export it with this edgegan")
        if self.model.output_range is not None:
            self.output_range()  # a malformed range is refused at load, not at the first PSNR
        for name in (self.inputs.file, self.reference.file, *(a.path for a in self.artifacts if a.path)):
            _check_relative(name)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["artifacts"] = [a.to_dict() for a in self.artifacts]
        return out

    @classmethod
    def parse(cls, data: Any, where: str) -> "Manifest":
        """A Manifest from untrusted JSON data; any problem is a BundleError naming the field."""
        if isinstance(data, dict) and data.get("schema_version") not in READABLE_SCHEMAS:
            raise BundleError(f"bundle schema_version {data.get('schema_version')!r} is not supported (expected "
                              f"{SCHEMA_VERSION!r}); re-export it with this edgegan")
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise BundleError(f"'{where}' is not a valid bundle manifest: {exc}") from None

    def output_range(self):
        """The model's OutputRange (its ``peak`` is every PSNR's); bundles from before it was
        recorded: [-1, 1], source "assumed"."""
        from .output_range import OutputRange, assumed_range

        if self.model.output_range is None:
            return assumed_range()
        try:
            return OutputRange.from_dict(self.model.output_range)
        except ConfigError as exc:
            raise BundleError(f"bundle model.output_range is invalid ({exc}); re-export it") from None

    def artifact(self, fmt: str) -> ArtifactRecord:
        for rec in self.artifacts:
            if rec.format == fmt:
                return rec
        have = ", ".join(r.format for r in self.artifacts)
        raise BundleError(f"bundle has no '{fmt}' artifact (it has: {have}); re-export with --formats {fmt}")


def _check_relative(name: str) -> None:
    """A path recorded in the manifest must stay inside the bundle."""
    p = Path(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise BundleError(f"manifest path {name!r} escapes the bundle; the manifest is corrupt or hostile")


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


def _is_replaceable(path: Path) -> bool:
    """``--force`` may replace only an empty folder or an edgegan bundle (its bundle.json loads)."""
    try:
        if not any(path.iterdir()):
            return True
        Bundle.load(path)
    except (OSError, EdgeganError):
        return False
    return True


def _partial_pattern(name: str) -> "re.Pattern[str]":
    """Names of BundleWriter's temp folders for bundle ``name`` (mkdtemp adds 8 characters)."""
    return re.compile(rf"\.{re.escape(name)}\.[A-Za-z0-9_]{{8}}\.partial")


class BundleWriter:
    """Context manager that builds a bundle in a temp dir and renames it into ``final`` on
    success. On any exception the temp dir is removed and ``final`` is left untouched.

    Writers to one ``final`` are serialised by a flock on ``.NAME.lock`` beside it (a second one
    fails at once with OutputError); holding it, a writer removes the temp folders a killed
    writer left. ``overwrite`` replaces only an empty folder or an existing bundle."""

    def __init__(self, final: Path, overwrite: bool = False) -> None:
        self.final = Path(final).absolute()
        self.overwrite = overwrite
        self.tmp: Optional[Path] = None
        self.lock: Optional[FileLock] = None

    def precheck(self) -> None:
        """The refusals of ``__enter__`` that need no lock, cheap enough to run before any work."""
        self._check_target()

    def _check_target(self) -> None:
        f = self.final
        too_long = [part for part in f.parts if len(part.encode()) > 255]
        if too_long:  # the OS limit for one name (ENAMETOOLONG), before anything touches the disk
            raise OutputError(f"--out has a folder name of {len(too_long[0].encode())} bytes; names are limited to 255 "
                              "bytes: choose a shorter --out")
        if f.is_symlink() or (f.exists() and not f.is_dir()):
            kind = "a symlink" if f.is_symlink() else "a file"
            raise OutputError(f"--out '{f}' is {kind}, not a bundle directory; choose another --out (nothing was changed)")
        if not f.exists():
            return
        if not self.overwrite:
            raise OutputError(f"'{f}' already exists; pass --force to replace it or choose another --out")
        if not _is_replaceable(f):
            raise OutputError(f"--force refused: '{f}' is neither an edgegan bundle nor empty, so replacing it "
                              "could delete your files; choose another --out (nothing was deleted)")

    def _remove_stale(self) -> None:
        """Temp folders of an earlier writer to the same bundle that was killed (we hold the lock)."""
        pattern = _partial_pattern(self.final.name)
        for p in self.final.parent.iterdir():
            if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
        old = self.final.with_name(f".{self.final.name}.old")
        if old.is_dir() and not old.is_symlink() and _is_replaceable(old):
            shutil.rmtree(old, ignore_errors=True)

    def __enter__(self) -> "BundleWriter":
        _check_writable(self.final.parent)
        self._check_target()  # before the lock: a refused --out leaves no lock file behind
        try:
            self.lock = FileLock(self.final.with_name(f".{self.final.name}.lock")).acquire()
        except LockBusy as exc:
            raise OutputError(f"another edgegan process (pid {exc.holder or '?'}) is writing '{self.final}'; "
                              "wait for it to finish or choose another --out") from None
        except OSError as exc:
            raise os_error_to_edgegan(exc, self.final.parent) from None
        try:
            self._check_target()  # again under the lock: the other writer may have finished meanwhile
            self._remove_stale()
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", suffix=".partial", dir=self.final.parent))
            (self.tmp / ARTIFACTS_DIR).mkdir()
        except OSError as exc:
            self._unlock()
            raise os_error_to_edgegan(exc, self.final.parent) from None
        except BaseException:
            self._unlock()
            raise
        return self

    def _unlock(self) -> None:
        if self.lock is not None:
            self.lock.release(unlink=True)
            self.lock = None

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

    def write_text(self, name: str, text: str) -> None:
        """A text file at the bundle's top level (e.g. report.md), renamed in with the rest."""
        assert self.tmp is not None
        _check_relative(name)
        try:
            (self.tmp / name).write_text(text)
        except OSError as exc:
            raise os_error_to_edgegan(exc, self.final) from None

    def write_manifest(self, manifest: "Manifest") -> None:
        assert self.tmp is not None
        data = manifest.to_dict()
        Manifest.parse(json.loads(json.dumps(data)), "the manifest being written")  # what we write must load
        try:
            (self.tmp / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        except OSError as exc:
            raise os_error_to_edgegan(exc, self.final) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        try:
            if exc_type is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
                return
            self._swap_in()
        finally:
            self._unlock()

    def _swap_in(self) -> None:
        assert self.tmp is not None
        try:
            os.chmod(self.tmp, usual_mode(directory=True))  # mkdtemp's 0700 -> what mkdir would give
            if self.final.exists():
                self._check_target()  # still a bundle or empty (a user may have filled it since)
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
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise


@dataclasses.dataclass
class Bundle:
    """A bundle on disk, loaded and validated (no torch needed)."""

    root: Path
    manifest: Manifest

    @classmethod
    def load(cls, root: str | Path) -> "Bundle":
        root = Path(root)
        mf = root / MANIFEST
        if mf.is_symlink() or not mf.is_file():
            raise BundleError(f"'{root}' is not a bundle (no {MANIFEST}); pass the directory `edgegan export` wrote")
        if mf.stat().st_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"'{mf}' is {mf.stat().st_size} bytes, more than a manifest can be "
                              f"({MAX_MANIFEST_BYTES}); it is not an edgegan bundle")
        try:
            data = json.loads(mf.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BundleError(f"'{mf}' is not valid JSON ({getattr(exc, 'msg', exc)}); re-run edgegan export") from None
        except RecursionError:
            raise BundleError(f"'{mf}' nests too deeply to be a manifest; re-run edgegan export") from None
        return cls(root, Manifest.parse(data, str(mf)))

    def artifact_records(self) -> list[ArtifactRecord]:
        return list(self.manifest.artifacts)

    def artifact(self, fmt: str) -> ArtifactRecord:
        return self.manifest.artifact(fmt)

    def file(self, name: str) -> Path:
        """A file of the bundle: a regular file inside it, never a symlink (a bundle from elsewhere
        must not make edgegan read, push or overwrite anything outside it)."""
        _check_relative(name)
        p = self.root / name
        for part in [p, *[self.root / Path(*Path(name).parts[:i]) for i in range(1, len(Path(name).parts))]]:
            if part.is_symlink():
                raise BundleError(f"'{name}' in bundle '{self.root}' is a symlink; a bundle holds only its own "
                                  "files: re-export it or copy the real file in")
        if not p.is_file():
            raise BundleError(f"bundle '{self.root}' has no file '{name}'; re-export it")
        return p

    def artifact_path(self, rec: ArtifactRecord) -> Path:
        if rec.path is None:
            raise BundleError(f"'{rec.format}' has no artifact file ({rec.status}: {rec.reason})")
        return self.file(rec.path)

    def inputs_path(self) -> Path:
        return self.file(self.manifest.inputs.file)

    def inputs(self) -> np.ndarray:
        return _load_array(self.inputs_path())

    def reference(self) -> np.ndarray:
        return _load_array(self.file(self.manifest.reference.file))

    def verify_hashes(self) -> list[str]:
        """Formats whose artifact file is missing, a symlink, or differs from its recorded sha256."""
        bad = []
        for rec in self.artifact_records():
            if rec.path is None:
                continue
            try:
                p = self.artifact_path(rec)
            except BundleError:
                bad.append(rec.format)
                continue
            if sha256_file(p) != rec.sha256:
                bad.append(rec.format)
        return bad


def _load_array(path: Path) -> np.ndarray:
    from .util.npy import load_npy

    return load_npy(path, "bundle array", BundleError)
