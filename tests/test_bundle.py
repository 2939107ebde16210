"""Bundle writing is atomic and its failures are clear."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgegan.bundle import ArtifactRecord, Bundle, BundleWriter, Manifest, ModelInfo, StoredArray
from edgegan.errors import BundleError, OutputError


def test_failed_write_leaves_nothing(tmp_path):
    final = tmp_path / "b"
    with pytest.raises(RuntimeError):
        with BundleWriter(final) as w:
            w.save_array("inputs.npy", np.zeros(3, np.float32))
            raise RuntimeError("converter exploded")
    assert list(tmp_path.iterdir()) == []


def small_manifest(name="m", artifacts=()) -> Manifest:
    return Manifest(schema_version=1, model=ModelInfo(name=name), input={"shape": [4, 1, 1]}, output={"shape": [1, 4, 4]},
                    inputs=StoredArray(file="inputs.npy", count=2), reference=StoredArray(file="reference.npy"),
                    artifacts=list(artifacts))


def test_existing_bundle_needs_overwrite_and_is_replaced_whole(tmp_path):
    final = tmp_path / "b"
    with BundleWriter(final) as w:
        w.write_manifest(small_manifest("one"))
    with pytest.raises(OutputError, match="already exists; pass --force"):
        BundleWriter(final).__enter__()
    with BundleWriter(final, overwrite=True) as w:
        w.write_manifest(small_manifest("two"))
    assert json.loads((final / "bundle.json").read_text())["model"]["name"] == "two"
    assert Bundle.load(final).manifest == small_manifest("two")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_unwritable_output(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputError, match="cannot create output directory"):
        BundleWriter(f / "sub" / "b").__enter__()
    with pytest.raises(OutputError, match="choose a writable --out"):
        BundleWriter("/proc/edgegan/b").__enter__()


def test_disk_full_is_reported_and_cleaned(small_tmpfs):
    full = small_tmpfs(64)
    with pytest.raises(OutputError, match="disk full while writing"):
        with BundleWriter(full / "b") as w:
            w.save_array("reference.npy", np.zeros(100_000, np.float32))
    assert list(full.iterdir()) == []


def test_load_rejects_non_bundles(tmp_path):
    with pytest.raises(BundleError, match="is not a bundle"):
        Bundle.load(tmp_path)
    (tmp_path / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        Bundle.load(tmp_path)
    (tmp_path / "bundle.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(BundleError, match="schema_version 99"):
        Bundle.load(tmp_path)


def _write(root, manifest: dict):
    root.mkdir(exist_ok=True)
    (root / "bundle.json").write_text(json.dumps(manifest))


def test_manifest_round_trips_and_rejects_wrong_types_and_escaping_paths(tmp_path):
    m = small_manifest(artifacts=[ArtifactRecord(format="onnx", status="ok", path="artifacts/model.onnx", sha256="0" * 64,
                                                 bytes=3, quantization={"scheme": "float32"})])
    assert Manifest.from_json(m.to_json()) == m
    good = m.to_dict()
    _write(tmp_path / "ok", good)
    loaded = Bundle.load(tmp_path / "ok")
    assert loaded.artifact("onnx").quantization == {"scheme": "float32"} and loaded.manifest.model.name == "m"
    for broken, match in [({**good, "model": {"name": 3}}, "expected str"),
                          ({**good, "artifacts": [{**good["artifacts"][0], "bytes": "many"}]}, "bytes"),
                          ({**good, "artifacts": [{**good["artifacts"][0], "status": "great"}]}, "status"),
                          ({**good, "artifacts": [{**good["artifacts"][0], "path": "../../etc/passwd"}]}, "escapes"),
                          ({**good, "inputs": {"file": "/etc/passwd"}}, "escapes"),
                          ({k: v for k, v in good.items() if k != "reference"}, "reference")]:
        _write(tmp_path / "bad", broken)
        with pytest.raises(BundleError, match=match):
            Bundle.load(tmp_path / "bad")


def test_bundle_files_are_never_symlinks(tmp_path):
    secret = tmp_path / "host_secret.npy"
    np.save(secret, np.arange(4, dtype=np.float32))
    root = tmp_path / "b"
    _write(root, small_manifest().to_dict())
    (root / "inputs.npy").symlink_to(secret)
    b = Bundle.load(root)
    with pytest.raises(BundleError, match="is a symlink"):
        b.inputs()
    (root / "inputs.npy").unlink()
    (root / "inputs.npy").mkdir()
    with pytest.raises(BundleError, match="no file"):
        b.inputs_path()


@pytest.fixture
def umask_022():
    import os

    old = os.umask(0o022)
    yield
    os.umask(old)


def test_bundle_folder_and_files_get_the_usual_modes_under_the_umask(tmp_path, umask_022):
    """mkdtemp makes 0700 folders; a bundle is meant to be shared (copied to a board, served)."""
    import os
    import stat

    final = tmp_path / "b"
    with BundleWriter(final) as w:
        w.save_array("inputs.npy", np.zeros(3, np.float32))
        w.write_manifest(small_manifest("one"))
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(final) == 0o755
    assert mode(final / "artifacts") == 0o755
    assert mode(final / "bundle.json") == 0o644 and mode(final / "inputs.npy") == 0o644
    os.umask(0o077)  # a private umask stays private
    with BundleWriter(tmp_path / "private") as w:
        w.write_manifest(small_manifest("two"))
    assert mode(tmp_path / "private") == 0o700


def test_atomic_writes_get_the_usual_file_mode(tmp_path, umask_022):
    import os
    import stat

    from edgegan.util.files import atomic_write

    atomic_write(tmp_path / "r.json", "{}")
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o644
