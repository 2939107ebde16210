"""Issue 16 (hardening): hostile or careless input, one group per numbered case of the issue.

Each case runs the real CLI (``python -m edgegan``) or the real library on real files and
checks what a user would see: a one-line error (no traceback, at most 3 stderr lines), a
non-zero exit, no code run from the file (a payload's marker never appears), nothing left
behind, nothing of the user's deleted. To add a case, add a test to its group (or a new
group named after the item number).
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import TESTS, run_cli

torch = pytest.importorskip("torch")

from edgegan.bundle import Bundle  # noqa: E402
from edgegan.errors import BundleError, CheckpointError, InputSpecError  # noqa: E402


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Non-zero exit, 1-3 stderr lines, no traceback; returns stderr."""
    err = proc.stderr
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode != 0, (proc.returncode, proc.stdout[-2000:], err[-2000:])
    assert 1 <= len(lines) <= 3, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    for needle in needles:
        assert needle in err, err
    return err


class Payload:
    """Unpickling this creates ``marker``: the proof that a file ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.ConvTranspose2d(8, 4, 4, 1, 0), torch.nn.ReLU(),
                               torch.nn.ConvTranspose2d(4, 1, 4, 2, 1), torch.nn.Tanh()).eval()


def save_pt2(path: Path, module: torch.nn.Module | None = None) -> Path:
    """torch.export's default: a static batch of 1 (what README tells users to do)."""
    module = module or _generator()
    torch.export.save(torch.export.export(module, (torch.randn(1, 8, 1, 1),)), str(path))
    return path


def rewrite_zip(path: Path, edit) -> None:
    """Rewrite every entry of the zip at ``path`` through ``edit(name, data) -> data``."""
    with zipfile.ZipFile(path) as zin:
        items = [(info, edit(info.filename, zin.read(info.filename))) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w") as zout:
        for info, data in items:
            zout.writestr(info, data)


def hostile_pt2(path: Path, marker: Path) -> Path:
    """The issue's recipe: one weight flagged ``use_pickle`` in model_weights_config.json and its
    file replaced by a torch.save of an object whose __reduce__ creates ``marker``."""
    save_pt2(path)
    buf = io.BytesIO()
    torch.save(Payload(marker), buf)
    target = {}

    def flag(name: str, data: bytes) -> bytes:
        if name.endswith("data/weights/model_weights_config.json"):
            cfg = json.loads(data)
            fqn = next(iter(cfg["config"]))
            cfg["config"][fqn]["use_pickle"] = True
            target["file"] = cfg["config"][fqn]["path_name"]
            return json.dumps(cfg).encode()
        return data

    rewrite_zip(path, flag)
    rewrite_zip(path, lambda name, data: buf.getvalue() if name.endswith("data/weights/" + target["file"]) else data)
    return path


# ---------------------------------------------------------------- item 1: .pt2 never unpickles
class TestItem1ExportedProgramPickles:
    def test_payload_runs_with_plain_torch_export_load(self, tmp_path):
        """The hostile file is real: torch.export.load alone creates the marker (so the tests
        below would see it if edgegan handed the file to torch unchecked)."""
        marker = tmp_path / "marker"
        f = hostile_pt2(tmp_path / "h.pt2", marker)
        try:
            torch.export.load(str(f))
        except Exception:  # noqa: BLE001 - it fails after unpickling; the marker is the point
            pass
        assert marker.exists()

    def test_export_refuses_with_one_line_and_leaves_nothing(self, tmp_path):
        marker, out = tmp_path / "marker", tmp_path / "bundle"
        f = hostile_pt2(tmp_path / "h.pt2", marker)
        proc = run_cli("export", str(f), "--out", str(out), "--formats", "onnx")
        assert_one_line_error(proc, "use_pickle")
        assert not marker.exists()
        assert not out.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["h.pt2"]

    def test_compress_list_layers_refuses(self, tmp_path):
        marker = tmp_path / "marker"
        f = hostile_pt2(tmp_path / "h.pt2", marker)
        proc = run_cli("compress", str(f), "--list-layers")
        assert_one_line_error(proc, "use_pickle")
        assert not marker.exists()

    def test_pickled_sample_inputs_refused(self, tmp_path):
        """torch retries the stored sample inputs with weights_only=False when a safe load fails."""
        from edgegan.models import load_generator

        marker = tmp_path / "marker"
        f = save_pt2(tmp_path / "s.pt2")
        buf = io.BytesIO()
        torch.save(Payload(marker), buf)
        rewrite_zip(f, lambda name, data: buf.getvalue() if "data/sample_inputs/" in name else data)
        with pytest.raises(CheckpointError, match="run code"):
            load_generator(str(f))
        assert not marker.exists()

    def test_fixed_batch_pt2_exports_and_matches_per_sample_outputs(self, tmp_path):
        """torch.export's default static batch 1 still exports: every stored output equals the
        original program run on that input alone."""
        f = save_pt2(tmp_path / "g.pt2")
        out = tmp_path / "bundle"
        proc = run_cli("export", str(f), "--out", str(out), "--formats", "onnx", "--inputs", "6", "--calibration", "4",
                       "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        b = Bundle.load(out)
        assert b.artifact("onnx").status == "ok"
        ep = torch.export.load(str(f)).module()
        inputs = b.inputs()
        with torch.no_grad():
            alone = np.concatenate([ep(torch.from_numpy(inputs[i:i + 1])).numpy() for i in range(len(inputs))])
        np.testing.assert_allclose(b.reference(), alone, atol=1e-6)
        assert "fixed batch of 1" in b.manifest.model.source

    def test_pt2_whose_graph_only_runs_batch_1_says_how_to_reexport(self, tmp_path):
        class Flat(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(8, 16)

            def forward(self, x):
                return torch.tanh(self.fc(x.view(1, 8))).view(1, 1, 4, 4)  # batch 1 baked in

        f = save_pt2(tmp_path / "flat.pt2", Flat().eval())
        out = tmp_path / "bundle"
        proc = run_cli("export", str(f), "--out", str(out), "--formats", "onnx")
        assert_one_line_error(proc, "fixed batch of 1", "dynamic_shapes")
        assert not out.exists()


# ---------------------------------------------------------------- items 5, 6, 14: export --out
class TestItems5and6ExportOutput:
    def test_force_refuses_a_folder_that_is_not_a_bundle(self, tmp_path):
        thesis = tmp_path / "thesis"
        thesis.mkdir()
        (thesis / "chapter1.tex").write_text("years of work")
        proc = run_cli("export", "dcgan-tiny", "--formats", "onnx", "--out", str(thesis), "--force")
        assert_one_line_error(proc, "neither an edgegan bundle nor empty")
        assert (thesis / "chapter1.tex").read_text() == "years of work"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]

    def test_force_refuses_a_regular_file(self, tmp_path):
        f = tmp_path / "notes.txt"
        f.write_text("keep me")
        proc = run_cli("export", "dcgan-tiny", "--formats", "onnx", "--out", str(f), "--force")
        assert_one_line_error(proc, "is a file")
        assert f.read_text() == "keep me"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

    def test_force_replaces_an_empty_folder_and_a_bundle(self, tmp_path):
        out = tmp_path / "b"
        out.mkdir()
        args = ("export", "dcgan-tiny", "--formats", "onnx", "--inputs", "4", "--calibration", "4", "--out", str(out),
                "--force", "--json")
        first = run_cli(*args)
        assert first.returncode == 0, first.stderr[-2000:]
        created = Bundle.load(out).manifest.created
        second = run_cli(*args, "--seed", "3")
        assert second.returncode == 0, second.stderr[-2000:]
        assert Bundle.load(out).manifest.seeds["inputs"] == 3 and created
        assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no lock, .old or .partial left

    def test_two_exports_to_one_out_at_once_one_wins_one_fails_clearly(self, tmp_path):
        out = tmp_path / "b"
        env = dict(os.environ, PYTHONPATH=str(TESTS))
        argv = [sys.executable, "-m", "edgegan", "export", "dcgan-tiny", "--formats", "onnx", "--inputs", "4",
                "--calibration", "4", "--out", str(out), "--json"]
        procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL) for _ in range(2)]
        results = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=600)
            results.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
        codes = sorted(r.returncode for r in results)
        assert codes[0] == 0 and codes[1] != 0, [r.stderr[-1000:] for r in results]
        loser = next(r for r in results if r.returncode != 0)
        assert_one_line_error(loser)
        assert "another edgegan process" in loser.stderr or "already exists" in loser.stderr
        winner = json.loads(next(r for r in results if r.returncode == 0).stdout)
        assert Bundle.load(out).manifest.created == winner["created"]  # the bundle is the winner's, whole
        assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


class TestItem14KilledExportLeftovers:
    def test_next_export_to_the_same_place_cleans_a_sigkilled_run(self, tmp_path):
        """SIGKILL a real export mid-conversion; the next export to the same --out removes its
        .NAME.*.partial folder and its edgegan-export-* work folder."""
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        out = tmp_path / "b"
        env = dict(os.environ, TMPDIR=str(tmp))
        argv = [sys.executable, "-m", "edgegan", "export", "dcgan-tiny", "--formats", "onnx,tflite-fp32",
                "--inputs", "4", "--calibration", "4", "--out", str(out)]
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and p.poll() is None:
                if list(tmp_path.glob(".b.*.partial/artifacts/*.onnx")) and list(tmp.glob("edgegan-export-*")):
                    break
                time.sleep(0.2)
            assert p.poll() is None, "the export finished before it could be killed"
        finally:
            os.killpg(p.pid, signal.SIGKILL)  # the export and its converter children
            p.wait()
        assert list(tmp_path.glob(".b.*.partial")) and list(tmp.glob("edgegan-export-*"))
        assert not out.exists()
        proc = subprocess.run(argv[:6] + ["onnx"] + argv[7:], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "tmp"]
        assert list(tmp.glob("edgegan-export-*")) == []

    def test_a_live_runs_work_folder_is_never_removed(self, tmp_path):
        from edgegan.util.locks import OwnedTempDir, remove_dead_temp_dirs

        with OwnedTempDir("edgegan-export-", tmp_path) as live:
            assert remove_dead_temp_dirs("edgegan-export-", tmp_path) == []
            assert Path(live).is_dir()
        foreign = tmp_path / "edgegan-export-someone-elses"  # no owner lock: not ours, left alone
        foreign.mkdir()
        assert remove_dead_temp_dirs("edgegan-export-", tmp_path) == [] and foreign.is_dir()


# ---------------------------------------------------------------- item 7: device setup
class TestItem7DeviceSetup:
    @pytest.fixture
    def working_venv(self, tmp_path):
        """A device workdir whose venv works (marker + a file that must survive)."""
        venv = tmp_path / "work" / "venv"
        venv.mkdir(parents=True)
        (venv / "edgegan-setup.json").write_text('{"requirements": ["numpy==1"]}')
        (venv / "WORKING").write_text("the runner's venv")
        return tmp_path / "work"

    def test_empty_wheels_dir_refused_before_the_device_changes(self, tmp_path, working_venv):
        empty = tmp_path / "wheels"
        empty.mkdir()
        before = sorted(p.relative_to(working_venv) for p in working_venv.rglob("*"))
        proc = run_cli("device", "setup", "local", "--workdir", str(working_venv), "--wheels", str(empty),
                       "--runtimes", "onnxruntime", "--force")
        assert_one_line_error(proc, "no .whl files")
        assert sorted(p.relative_to(working_venv) for p in working_venv.rglob("*")) == before

    def test_failed_install_keeps_the_working_venv(self, tmp_path, working_venv):
        wheels = tmp_path / "wheels"
        wheels.mkdir()
        (wheels / "numpy-0.0.1-py3-none-any.whl").write_bytes(b"not a wheel")
        proc = run_cli("device", "setup", "local", "--workdir", str(working_venv), "--wheels", str(wheels),
                       "--runtimes", "onnxruntime", "--requirements", "numpy==0.0.1", "--system-python", sys.executable,
                       "--force")
        assert_one_line_error(proc, "left as it was")
        assert (working_venv / "venv" / "WORKING").read_text() == "the runner's venv"
        assert (working_venv / "venv" / "edgegan-setup.json").is_file()
        assert not (working_venv / "venv.new").exists()


# ---------------------------------------------------------------- item 8: one record per checkpoint
def test_item8_two_compress_runs_in_one_folder_keep_both_records(tmp_path):
    import hashlib

    runs = {"a.pt": ("--method", "quant", "--bits", "4"), "b.pt": ("--method", "prune", "--sparsity", "0.5")}
    for name, method in runs.items():
        proc = run_cli("compress", "dcgan-tiny", *method, "--out", str(tmp_path / name), "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
    for name, method in runs.items():
        ckpt = tmp_path / name
        record = json.loads((tmp_path / f"{ckpt.stem}.compression.json").read_text())
        assert record["checkpoint"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
        assert [s["method"] for s in record["pipeline"]] == [method[1]]
        bundle = tmp_path / f"bundle-{ckpt.stem}"
        proc = run_cli("export", str(ckpt), "--formats", "onnx", "--inputs", "4", "--calibration", "4",
                       "--out", str(bundle), "--json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert Bundle.load(bundle).manifest.compression == record["records"]


# ---------------------------------------------------------------- item 9: bounds before allocating
def write_npy_header(path: Path, shape: tuple, data: bytes = b"") -> Path:
    """A .npy whose header claims ``shape`` float32 but holds only ``data``."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
        fh.write(data)
    return path


class TestItem9Bounds:
    @pytest.mark.parametrize("verb", ["export", "profile"])
    def test_threads_bounded(self, verb, tmp_path, small_bundle):
        out = tmp_path / "out"
        target = ["dcgan-tiny", "--formats", "onnx"] if verb == "export" else [str(small_bundle)]
        proc = run_cli(verb, *target, "--threads", "100000", "--out", str(out), timeout=120)  # unbounded: hangs
        assert_one_line_error(proc, "threads must be in 1..256, got 100,000 (flag --threads)")
        assert not out.exists()

    @pytest.mark.parametrize("flag", ["--inputs", "--calibration"])
    def test_counts_bounded(self, flag, tmp_path):
        proc = run_cli("export", "dcgan-tiny", "--formats", "onnx", flag, "1000000000", "--out", str(tmp_path / "b"),
                       timeout=120)
        assert_one_line_error(proc, f"must be in 1..100,000, got 1,000,000,000 (flag {flag})")

    def test_counts_bounded_by_bytes_for_a_big_model(self, tmp_path):
        """5,000 stored 3x256x256 images + their outputs need ~7 GiB: refused before drawing them."""
        t0 = time.monotonic()
        proc = run_cli("export", "unet", "--formats", "onnx", "--inputs", "5000", "--out", str(tmp_path / "b"),
                       timeout=120)  # unbounded, it grows past 6 GB RSS
        assert_one_line_error(proc, "GiB")
        assert time.monotonic() - t0 < 120

    def test_npy_header_claiming_a_terabyte_refused_everywhere(self, tmp_path, small_bundle):
        from edgegan.metrics.compare import load_samples

        huge = write_npy_header(tmp_path / "huge.npy", (1 << 38, 1, 2, 2))  # 1 TiB claimed, 0 bytes held
        proc = run_cli("export", "dcgan-tiny", "--formats", "onnx", "--inputs-file", str(huge), "--out",
                       str(tmp_path / "b"))
        assert_one_line_error(proc, "limit")
        proc = run_cli("compare", str(huge), str(huge))
        assert_one_line_error(proc, "limit")
        with pytest.raises(Exception, match="limit"):
            load_samples(huge)

    def test_truncated_npy_refused_in_a_bundle_before_allocating(self, tmp_path, small_bundle):
        """numpy allocates what the header claims before reading: a 100-byte inputs.npy claiming
        256 MB must be refused with no such allocation."""
        import shutil
        import tracemalloc

        b = tmp_path / "b"
        shutil.copytree(small_bundle, b)
        write_npy_header(b / "inputs.npy", (1 << 26, 1, 1, 1), b"\0" * 100)
        bundle = Bundle.load(b)
        tracemalloc.start()
        try:
            with pytest.raises(BundleError, match="truncated"):
                bundle.inputs()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16 << 20, peak

    def test_npy_checks_are_real(self, tmp_path):
        """A good array loads unchanged; a pickled one, a symlink and a FIFO are refused."""
        from edgegan.util.npy import load_npy

        good = tmp_path / "good.npy"
        arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        np.save(good, arr)
        np.testing.assert_array_equal(load_npy(good), arr)
        pickled = tmp_path / "obj.npy"
        np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        link = tmp_path / "link.npy"
        link.symlink_to(good)
        fifo = tmp_path / "fifo.npy"
        os.mkfifo(fifo)
        for bad, why in ((pickled, "Python objects"), (link, "symlink"), (fifo, "not a regular file")):
            with pytest.raises(InputSpecError, match=why):
                load_npy(bad)

    def test_config_width_refused_with_the_parameter_count(self, tmp_path):
        proc = run_cli("export", "dcgan-tiny", "--config", '{"width": 100000}', "--formats", "onnx", "--out",
                       str(tmp_path / "b"))
        assert_one_line_error(proc, "6,721,283,100,001 parameters")

    def test_timeout_stops_a_factory_that_never_returns(self, tmp_path):
        (tmp_path / "sleepy.py").write_text(
            "import time\n"
            "def make():\n"
            "    while True:\n"
            "        try:\n"
            "            time.sleep(1000)\n"
            "        except Exception:\n"  # a factory swallowing errors must still be stopped
            "            pass\n")
        env = dict(os.environ, PYTHONPATH=str(tmp_path))
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "edgegan", "export", "sleepy:make", "--timeout", "3",
                               "--formats", "onnx", "--out", str(tmp_path / "b")], env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert_one_line_error(proc, "did not finish within 3 s")
        assert time.monotonic() - t0 < 120
        assert not (tmp_path / "b").exists()

    def test_factory_raising_system_exit_zero_is_an_error(self, tmp_path):
        (tmp_path / "quits.py").write_text("import sys\ndef make():\n    sys.exit(0)\n")
        env = dict(os.environ, PYTHONPATH=str(tmp_path))
        proc = subprocess.run([sys.executable, "-m", "edgegan", "export", "quits:make", "--formats", "onnx",
                               "--out", str(tmp_path / "b")], env=env, capture_output=True, text=True, timeout=180,
                              stdin=subprocess.DEVNULL)
        assert_one_line_error(proc, "raised SystemExit")


# ---------------------------------------------------------------- item 12 (subset) and 14: bad flags
@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    from edgegan.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("hardening") / "dcgan-tiny"
    run_export(ExportConfig(model="dcgan-tiny", out=str(out), formats=["onnx"], n_inputs=8, calibration=8,
                            latency_rounds=1, latency_runs=2))
    return out


class TestItem12BadFlags:
    def test_negative_seed(self, tmp_path):
        proc = run_cli("export", "dcgan-tiny", "--seed", "-1", "--formats", "onnx", "--out", str(tmp_path / "b"))
        assert_one_line_error(proc, "input_seed must be in 0..")
        assert "(flag --seed)" in proc.stderr
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("value", ["nan", "inf", "-1"])
    def test_profile_timeout_not_a_duration(self, value, tmp_path, small_bundle):
        proc = run_cli("profile", str(small_bundle), "--timeout", value, "--out", str(tmp_path / "r"))
        assert_one_line_error(proc, "timeout_s must be a number of seconds > 0")
        assert "(flag --timeout)" in proc.stderr
        assert list(tmp_path.iterdir()) == []

    def test_profile_out_is_an_existing_file(self, tmp_path, small_bundle):
        f = tmp_path / "results"
        f.write_text("mine")
        proc = run_cli("profile", str(small_bundle), "--out", str(f), "--workdir", str(tmp_path / "w"))
        assert_one_line_error(proc, "is a file")
        assert f.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["results"]

    def test_profile_out_on_a_read_only_filesystem(self, tmp_path, small_bundle):
        ro = tmp_path / "ro"
        ro.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {r.stderr.decode().strip()}")
        try:
            proc = run_cli("profile", str(small_bundle), "--out", str(ro / "results"), "--workdir", str(tmp_path / "w"))
            assert_one_line_error(proc, "not writable")
            assert list(ro.iterdir()) == [] and not (tmp_path / "w").exists()
        finally:
            subprocess.run(["umount", str(ro)], check=True)

    def test_profile_creates_no_out_when_the_target_is_refused(self, tmp_path, small_bundle):
        out = tmp_path / "r"
        proc = run_cli("profile", str(small_bundle), "--target", "ssh://nobody@127.0.0.1:9", "--connect-timeout", "2",
                       "--retries", "0", "--out", str(out), timeout=120)
        assert_one_line_error(proc)
        assert not out.exists()

    def test_profile_creates_no_out_for_a_bad_bundle(self, tmp_path):
        out = tmp_path / "r"
        proc = run_cli("profile", str(tmp_path), "--out", str(out))
        assert_one_line_error(proc, "not a bundle")
        assert not out.exists()


def test_item12_a_port_that_is_not_ssh_is_one_line_not_a_library_traceback(tmp_path):
    """paramiko logs ~20 traceback lines per failed banner read; the CLI reports it in one."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        proc = run_cli("device", "info", f"ssh://pi@127.0.0.1:{port}", "--connect-timeout", "3", "--retries", "1",
                       "--known-hosts", str(tmp_path / "known_hosts"), timeout=120)
    finally:
        server.shutdown()
    err = assert_one_line_error(proc, "cannot connect to ssh://pi@127.0.0.1", "SSH protocol banner")
    assert proc.returncode == 7 and "paramiko" not in err


def test_item12_a_malformed_known_hosts_file_is_one_line(tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_bytes(b"garbage line\n\x00\xff not text\n")
    proc = run_cli("device", "info", "ssh://pi@127.0.0.1:1", "--connect-timeout", "2", "--retries", "1",
                   "--known-hosts", str(kh), timeout=120)
    assert_one_line_error(proc, "cannot read known_hosts", "pass another --known-hosts")


def test_item12_an_out_name_longer_than_the_os_allows_is_one_line(tmp_path):
    out = tmp_path / ("x" * 300)
    proc = run_cli("export", "dcgan-tiny", "--formats", "onnx", "--out", str(out), timeout=120)
    assert_one_line_error(proc, "names are limited to 255 bytes")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content,needle", [(bytes(range(256)) * 8, "not text"),
                                            (b"[" * 100_000 + b"]" * 100_000, "nests too deeply")])
def test_item12_a_binary_or_deeply_nested_pipeline_file_is_one_line(tmp_path, content, needle):
    f = tmp_path / "pipeline.json"
    f.write_bytes(content)
    proc = run_cli("compress", "dcgan-tiny", "--pipeline", str(f), "--out", str(tmp_path / "q.pt"), timeout=120)
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "q.pt").exists()


class TestItem13ClearMessages:
    def test_random_bytes_are_not_called_code(self, tmp_path):
        f = tmp_path / "weights.pt"
        f.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes().replace(b"\x80", b"\x81"))
        for argv in (["dcgan-tiny", "--checkpoint", str(f)], [str(f)]):
            proc = run_cli("export", *argv, "--formats", "onnx", "--out", str(tmp_path / "b"), timeout=120)
            err = assert_one_line_error(proc, "is not a PyTorch checkpoint")
            assert "would run code" not in err
        assert not (tmp_path / "b").exists()

    def test_an_empty_model_argument_says_so(self, tmp_path):
        proc = run_cli("export", "", "--formats", "onnx", "--out", str(tmp_path / "b"), timeout=120)
        err = assert_one_line_error(proc, "the model is empty")
        assert "directory" not in err
