"""Bundle writing is atomic and its failures are clear."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgegan.bundle import Bundle, BundleWriter
from edgegan.errors import BundleError, OutputError


def test_failed_write_leaves_nothing(tmp_path):
    final = tmp_path / "b"
    with pytest.raises(RuntimeError):
        with BundleWriter(final) as w:
            w.save_array("inputs.npy", np.zeros(3, np.float32))
            raise RuntimeError("converter exploded")
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_needs_overwrite_and_is_replaced_whole(tmp_path):
    final = tmp_path / "b"
    with BundleWriter(final) as w:
        w.write_manifest({"v": 1})
    with pytest.raises(OutputError, match="already exists; pass --force"):
        BundleWriter(final).__enter__()
    with BundleWriter(final, overwrite=True) as w:
        w.write_manifest({"v": 2})
    assert json.loads((final / "bundle.json").read_text()) == {"v": 2}
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
