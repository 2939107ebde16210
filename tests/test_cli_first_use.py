"""What a new user meets first: --version, -v anywhere, did-you-mean, pipes that close early,
user text printed as text (never rich markup), one line for a missing optional package, and no
third-party log noise in the progress output."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgegan import __version__
from edgegan.cli.main import VERBS, build_parser
from edgegan.util.deps import EXTRA_OF, missing_message

ROOT = Path(__file__).resolve().parents[1]


def run_edgegan(*args, cwd=None, hide=(), tmp_path=None, stdout=subprocess.PIPE,
                columns=80) -> subprocess.CompletedProcess:
    """`python -m edgegan ARGS` (80 columns by default); ``hide``: import names made absent (as if not
    installed: ``sys.modules[name] = None`` from a sitecustomize, so both ``import`` and
    ``importlib.util.find_spec`` see them missing)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(COLUMNS=str(columns), TF_CPP_MIN_LOG_LEVEL="0")
    if hide:
        site = tmp_path / "hide"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(f"import sys\nfor _m in {list(hide)!r}:\n    sys.modules[_m] = None\n")
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "edgegan", *map(str, args)], cwd=cwd, env=env, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, timeout=600)


# ---------------------------------------------------------------- --version, -v, did-you-mean
def test_version():
    r = run_edgegan("--version")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"edgegan {__version__}\n", "")


@pytest.mark.parametrize("argv, verbose", [(["env", "-v"], True), (["env", "--verbose", "--json"], True),
                                           (["-v", "env"], True), (["env"], False)])
def test_verbose_before_or_after_the_verb(argv, verbose):
    assert build_parser("env").parse_args(argv).verbose is verbose


def test_wrong_verb_suggests_the_closest_one():
    r = run_edgegan("exprot", "dcgan-tiny")
    assert r.returncode == 2
    assert r.stderr == "edgegan: error: unknown verb 'exprot'; did you mean 'export'?\n"
    assert "did you mean 'profile'" in run_edgegan("profil").stderr
    r = run_edgegan("zzzz")
    assert r.returncode == 2 and r.stderr == "edgegan: error: unknown verb 'zzzz'; see `edgegan --help`\n"


# ---------------------------------------------------------------- `edgegan ... | head`
@pytest.mark.parametrize("args", [("env", "--json"), ("--help",), ("export", "--help")])
def test_reader_gone_is_not_a_traceback(args):
    """stdout is a pipe whose reader already exited (``| head`` after its lines): exit like a
    process killed by SIGPIPE (141), with nothing on stderr (argparse's own --help output
    ignores write errors and exits 0)."""
    read, write = os.pipe()
    os.close(read)
    try:
        r = run_edgegan(*args, stdout=write)
    finally:
        os.close(write)
    assert r.stderr == "" and r.returncode == (0 if "--help" in args else 141)


# ---------------------------------------------------------------- user text is text
def test_env_hint_keeps_its_brackets(tmp_path):
    """The install hint names an extra in brackets; rich must print it, not eat it as markup."""
    r = run_edgegan("env", hide=("tensorflow",), tmp_path=tmp_path, columns=400)  # no cell wrapping
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"no ({missing_message(['tensorflow'])})" in r.stdout
    doc = json.loads(run_edgegan("env", "--json", hide=("tensorflow",), tmp_path=tmp_path).stdout)
    reasons = {f["format"]: f["reason"] for f in doc["formats"]}
    assert reasons["tflite-int8"] == missing_message(["tensorflow"]) and reasons["onnx"] is None


def test_profile_table_prints_device_and_user_text_verbatim(capsys):
    from edgegan.cli.profile import print_profile_table

    doc = {"bundle": {"model": "gen[v2]"}, "target": "ssh://pi@[::1]", "device": {"arch": "aarch64", "cpu": "[bold]x"},
           "results": [{"format": "onnx", "status": "failed", "runtime": "onnxruntime",
                        "reason": "ModuleNotFoundError: install edgegan[ort] on the board [/]"}]}
    print_profile_table(doc, Path("/tmp/[b]results"))
    out = " ".join(capsys.readouterr().out.split())
    for text in ("gen[v2]", "ssh://pi@[::1]", "[bold]x", "edgegan[ort]", "/tmp/[b]results"):
        assert text in out, text


# ---------------------------------------------------------------- missing optional packages
@pytest.mark.parametrize("hide, extra", [(("torch",), "torch"), (("onnx",), "ort"), (("onnxruntime",), "ort")])
def test_export_without_a_package_is_one_line_and_creates_nothing(tmp_path, hide, extra):
    work = tmp_path / "work"
    work.mkdir()
    r = run_edgegan("export", "dcgan-tiny", "--formats", "onnx", cwd=work, hide=hide, tmp_path=tmp_path)
    assert r.returncode == 9, r.stderr[-2000:]
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"edgegan export: error: {hide[0]} not installed (needed for export)")
    assert f"pip install 'edgegan[{extra}]'" in r.stderr
    assert list(work.iterdir()) == []  # no bundles/ folder


def test_ssh_profile_without_paramiko_is_one_line_and_creates_nothing(tmp_path):
    out = tmp_path / "results"
    r = run_edgegan("profile", tmp_path / "no-bundle", "--target", "ssh://pi@127.0.0.1:9", "--out", out,
                    hide=("paramiko",), tmp_path=tmp_path)
    assert r.returncode == 9 and r.stderr.count("\n") == 1, r.stderr
    assert "paramiko not installed (needed for ssh:// targets)" in r.stderr and "edgegan[ssh]" in r.stderr
    assert not out.exists() and r.stdout == ""


def test_models_lists_the_zoo_without_torch(tmp_path):
    """The zoo's configs are torch-free (edgegan.models.configs): listing needs no torch; only
    the parameter counts do, and the output says so."""
    r = run_edgegan("models", hide=("torch",), tmp_path=tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for name in ("dcgan-digits", "resnet-sketch", "unet-tiny"):
        assert name in r.stdout
    assert "3x64x64" in r.stdout  # inputs come from the configs
    assert "parameter counts need torch: pip install 'edgegan[torch]'" in r.stdout
    rows = json.loads(run_edgegan("models", "--json", hide=("torch",), tmp_path=tmp_path).stdout)
    assert {r["name"]: r["params"] for r in rows}["dcgan-digits"] is None
    # with torch: the paper's count for width 32 (672·d² + 12831·d + 1)
    rows = json.loads(run_edgegan("models", "--json").stdout)
    assert {r["name"]: r["params"] for r in rows}["dcgan-digits"] == 672 * 32 ** 2 + 12831 * 32 + 1


def test_every_named_package_has_an_extra_in_pyproject():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRA_OF.values()) <= set(extras)


# ---------------------------------------------------------------- third-party noise
def test_export_progress_is_free_of_third_party_noise(tmp_path):
    out = tmp_path / "out[red]x[/red]"  # a path rich would read as markup
    r = run_edgegan("export", "dcgan-tiny", "--formats", "onnx", "--inputs", "4", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "torchvision" not in r.stderr and "torchvision" not in r.stdout
    assert r.stderr == ""
    assert f"bundle: {out}" in r.stdout.replace("\n", "")
    assert (out / "bundle.json").is_file()


def test_held_back_output_keeps_edgegan_records_and_drops_the_rest():
    code = textwrap.dedent("""
        import logging, os, sys, warnings
        from edgegan.cli.third_party_output import hold_back_third_party_output
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        torch_log = logging.getLogger("torch"); torch_log.propagate = False
        torch_log.addHandler(logging.StreamHandler(sys.stderr))
        with hold_back_third_party_output(False) as held:
            torch_log.warning("torchvision is not installed")
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
            warnings.warn("a library warning")
            logging.getLogger("onnxscript").warning("third-party record")
            logging.getLogger("edgegan.export").warning("ours")
        logging.getLogger("edgegan.export").warning("after")
        print(len(held.lines))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "edgegan.export: ours\nedgegan.export: after\n"
    assert int(r.stdout) >= 3  # torch's line, the C++ line, the warning (2 lines)
