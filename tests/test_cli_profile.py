"""`edgegan profile` / `edgegan device` as a user runs them (subprocess, real CLI)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FAST = ["--runs", "3", "--warmup", "1", "--power-baseline", "0.05", "--power-min-seconds", "0.05"]


def edgegan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "edgegan", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def bundle(tiny_bundle) -> Path:
    return tiny_bundle[0]


def test_profile_local_prints_the_table_and_writes_the_report(bundle, tmp_path):
    proc = edgegan("profile", str(bundle), "--target", "local", "--formats", "onnx,tflite-int8", "--out",
                   str(tmp_path / "r"), *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "✔ ok" in proc.stdout and "results:" in proc.stdout and "power:" in proc.stdout
    assert "✅" not in proc.stdout  # one set of marks across verbs (export's)
    for name in ("results.json", "results.csv", "report.md", "grid.png", "onnx/samples.npy", "tflite-int8/samples.npy"):
        assert (tmp_path / "r" / name).is_file(), name
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert doc["bundle"]["thresholds"] == manifest["thresholds"] and "ok_psnr_db" in manifest["thresholds"]


def test_profile_json_and_a_format_missing_from_the_bundle_exit_1(bundle, tmp_path):
    b2 = tmp_path / "b2"
    shutil.copytree(bundle, b2)
    m = json.loads((b2 / "bundle.json").read_text())
    m["artifacts"] = [a for a in m["artifacts"] if a["format"] != "tflite-fp16"]  # registered, not exported
    (b2 / "bundle.json").write_text(json.dumps(m))
    proc = edgegan("profile", str(b2), "--formats", "onnx,tflite-fp16", "--json", "--no-compare",
                   "--out", str(tmp_path / "r"), *FAST)
    assert proc.returncode == 1  # one ✘ failed row
    doc = json.loads(proc.stdout)
    assert [r["status"] for r in doc["results"]] == ["ok", "failed"] and doc["complete"] is True


@pytest.mark.parametrize("name, hint", [("tflite-int9", "did you mean 'tflite-int8'?"),
                                        ("openvino-ir", "known formats: ")])
def test_an_unknown_format_is_refused_before_connecting(bundle, tmp_path, name, hint):
    # an unreachable target: the refusal must come before any connection attempt
    proc = edgegan("profile", str(bundle), "--formats", f"onnx,{name}", "--target", "ssh://nobody@127.0.0.1:9",
                   "--out", str(tmp_path / "r"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and f"unknown format '{name}'" in proc.stderr and hint in proc.stderr
    assert "onnx, ort-int8" in proc.stderr  # the known formats are listed
    assert not (tmp_path / "r").exists()


def test_a_rerun_into_the_same_out_is_refused_or_replaced_never_mixed(bundle, tmp_path):
    out = tmp_path / "r"
    first = edgegan("profile", str(bundle), "--formats", "onnx,ort-int8", "--no-compare", "--no-memory", "--json",
                    "--out", str(out), *FAST)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["onnx", "ort-int8"]
    again = edgegan("profile", str(bundle), "--formats", "onnx", "--out", str(out), *FAST)
    assert again.returncode != 0 and "holds an earlier profile run" in again.stderr and "--force" in again.stderr
    assert (out / "ort-int8" / "samples.npy").is_file()  # refused: nothing removed
    mine = out / "ort-int8" / "notes.txt"
    mine.write_text("my notes")
    forced = edgegan("profile", str(bundle), "--formats", "onnx", "--no-compare", "--no-memory", "--json",
                     "--out", str(out), "--force", *FAST)
    assert forced.returncode == 0, forced.stderr
    # the earlier run's ort-int8 results are gone (only what profile wrote: the user's file stays)
    assert sorted(p.name for p in (out / "ort-int8").iterdir()) == ["notes.txt"]
    assert [r["format"] for r in json.loads((out / "results.json").read_text())["results"]] == ["onnx"]
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "chapter1.tex").write_text("mine")
    proc = edgegan("profile", str(bundle), "--formats", "onnx", "--out", str(user), "--force", *FAST)
    assert proc.returncode != 0 and "holds no profile results" in proc.stderr
    assert [p.name for p in user.iterdir()] == ["chapter1.tex"]


def test_device_info_local(tmp_path):
    proc = edgegan("device", "info", "local", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["arch"] and info["cores"] >= 1 and "onnxruntime" in info["runtimes"] and info["target"] == "local"


@pytest.mark.parametrize("args, code, text", [
    (["profile", "/nonexistent", "--target", "local"], 6, "is not a bundle"),
    (["device", "info", "ftp://host"], 2, "unknown target scheme 'ftp'"),
    (["device", "info", "ssh://user:pw@host"], 2, "passwords in the target URL are not supported"),
    (["device", "setup", "local", "--runtimes", "tensorrt"], 2, "unknown runtime"),
    (["profile", "/nonexistent", "--power", "joulemeter"], 2, "is not a probe"),
])
def test_errors_are_one_line_with_exit_codes(args, code, text):
    proc = edgegan(*args)
    assert proc.returncode == code, proc.stderr
    assert text in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_importing_edgegan_and_its_device_cli_stays_light():
    code = ("import sys, edgegan, edgegan.devices, edgegan.devices.transport, edgegan.cli.profile, edgegan.cli.device\n"
            "heavy = [m for m in ('paramiko', 'onnxruntime', 'torch', 'tensorflow', 'ai_edge_litert') if m in sys.modules]\n"
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_config_errors_name_the_flag_and_defaults_come_from_the_config(tmp_path, capsys):
    import dataclasses

    from edgegan.cli.main import main
    from edgegan.devices.profile import ProfileConfig

    code = main(["profile", str(tmp_path), "--runs", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "ProfileConfig.runs must be >= 1, got 0 (flag --runs)" in err and err.count("\n") == 1
    code = main(["export", "dcgan-tiny", "--inputs", "0", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "ExportConfig.n_inputs must be in 1..100,000, got 0 (flag --inputs)" in err
    assert not (tmp_path / "b").exists()
    # every profile option the parser has defaults to None: ProfileConfig holds the defaults
    from edgegan.cli.main import build_parser

    parser = build_parser("profile")
    sub = next(a for a in parser._actions if a.dest == "verb").choices["profile"]
    dests = {a.dest: a.default for a in sub._actions if a.dest not in ("help", "bundle")}
    config_flags = ("target", "runs", "warmup", "threads", "power", "power_baseline", "power_min_seconds", "timeout",
                    "no_memory", "resume", "no_compare", "keep_remote", "vs_host", "formats", "out")
    assert {d: dests[d] for d in config_flags} == dict.fromkeys(config_flags)
    assert ProfileConfig(bundle="b").runs == 50 and {f.name for f in dataclasses.fields(ProfileConfig)} >= {"runs", "warmup"}


def test_a_results_folder_of_a_run_killed_before_its_first_save_counts_as_an_earlier_run(tmp_path):
    from edgegan.devices.results_folder import check_earlier_run, clear_earlier_run
    from edgegan.errors import OutputError

    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "samples.npy").write_bytes(b"pulled before the kill")
    with pytest.raises(OutputError, match="holds an earlier profile run"):
        check_earlier_run(tmp_path, force=False, resume=False)
    check_earlier_run(tmp_path, force=True, resume=False)
    assert clear_earlier_run(tmp_path) == ["onnx"] and list(tmp_path.iterdir()) == []
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "thesis.tex").write_text("mine")  # not profile's: the folder is not a results folder
    with pytest.raises(OutputError, match="holds no profile results"):
        check_earlier_run(tmp_path, force=True, resume=False)
