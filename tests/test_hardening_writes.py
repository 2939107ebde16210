"""Issue 16, the writes of `edgegan compress`: disk full or a file-size limit mid-save leaves
nothing half-written, temp files of a killed compress are cleaned by the next run, and an
unwritable --out / --record is refused before any work. Real filesystems (a tiny tmpfs, a
read-only mount, RLIMIT_FSIZE in a subprocess), no mocked writes."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TESTS, run_cli
from test_hardening import assert_one_line_error

pytest.importorskip("torch")

QUANT = ("--method", "quant", "--bits", "4")


def test_disk_full_during_save_leaves_nothing(small_tmpfs):
    full = small_tmpfs(24)  # a dcgan-tiny checkpoint is ~100 KB
    proc = run_cli("compress", "dcgan-tiny", *QUANT, "--out", str(full / "q.pt"), timeout=300)
    assert_one_line_error(proc, "disk full while writing", "nothing was written")
    assert sorted(p.name for p in full.iterdir()) == []  # no checkpoint, no record, no temp, no lock


def test_file_size_limit_during_save_leaves_nothing(tmp_path):
    """Past RLIMIT_FSIZE the write fails with EFBIG (python ignores SIGXFSZ)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    env = dict(os.environ, PYTHONPATH=str(TESTS), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-m", "edgegan", "compress", "dcgan-tiny", *QUANT, "--out",
                           str(tmp_path / "q.pt")], env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, stdin=subprocess.DEVNULL)
    assert_one_line_error(proc, "file size limit")
    assert list(tmp_path.iterdir()) == []


def test_next_compress_removes_the_temp_files_of_a_killed_one(tmp_path):
    from edgegan.util.files import temp_path_beside

    # what a compress killed mid-save leaves: its temp checkpoint and temp record (their real names)
    dead = [temp_path_beside(tmp_path / "q.pt"), temp_path_beside(tmp_path / "q.compression.json")]
    for p in dead:
        p.write_bytes(b"half a checkpoint")
    other = temp_path_beside(tmp_path / "other.pt")  # another checkpoint's: not ours to remove
    mine = tmp_path / ".q.pt.notes"  # a user's file that merely looks similar
    mine.write_text("keep")
    proc = run_cli("compress", "dcgan-tiny", *QUANT, "--out", str(tmp_path / "q.pt"), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".q.pt.notes", other.name, "q.compression.json", "q.pt"])


@pytest.fixture
def read_only_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {r.stderr.decode().strip()}")
    yield ro
    subprocess.run(["umount", str(ro)], check=True)


def test_record_on_a_read_only_location_is_refused_before_work(tmp_path, read_only_dir):
    # an unknown model would be the first error if the model were loaded before the check
    proc = run_cli("compress", "no-such-model", *QUANT, "--out", str(tmp_path / "q.pt"),
                   "--record", str(read_only_dir / "sub" / "q.json"))
    err = assert_one_line_error(proc, "--record", f"'{read_only_dir}' is not writable")
    assert "no-such-model" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"] and list(read_only_dir.iterdir()) == []


def test_out_on_a_read_only_location_is_refused_before_work(tmp_path, read_only_dir):
    proc = run_cli("compress", "no-such-model", *QUANT, "--out", str(read_only_dir / "q.pt"))
    assert_one_line_error(proc, "--out", "is not writable")
