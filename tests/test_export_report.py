"""What an export leaves besides bundle.json: report.md in the bundle, progress on stderr with
--json, and fidelity of a compressed checkpoint against its base model as well."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgegan.results import STATUS_MARKS  # noqa: E402


def report_rows(text: str) -> dict[str, list[str]]:
    """format -> cells of the fidelity table in report.md."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith(("| format", "| ---")):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def test_report_md_is_in_the_bundle_and_lists_every_format_with_its_status(tiny_bundle):
    path, manifest = tiny_bundle
    text = (path / "report.md").read_text()
    rows = report_rows(text)
    assert list(rows) == [a["format"] for a in manifest["artifacts"]]
    for a in manifest["artifacts"]:
        assert rows[a["format"]][1] == STATUS_MARKS[a["status"]]
        psnr = (a.get("fidelity") or {}).get("psnr_db")
        if psnr is not None:
            assert rows[a["format"]][3] == f"{psnr:.2f}"
    assert "dcgan-tiny" in text.splitlines()[0]
    assert f"{manifest['model']['params']:,} parameters" in text
    assert "reference: float model dcgan-tiny" in text
    for tool, version in manifest["tools"].items():
        if version:
            assert f"- {tool}: {version}" in text


def test_a_failed_export_leaves_no_report(cli, tmp_path):
    out = tmp_path / "b"
    proc = cli("export", "no-such-model", "--out", str(out), "--formats", "onnx")
    assert proc.returncode != 0
    assert not out.exists() and not list(tmp_path.glob("**/report.md"))


def test_json_export_reports_progress_on_stderr_one_line_per_stage(cli, tmp_path):
    out = tmp_path / "b"
    proc = cli("export", "dcgan-tiny", "--formats", "onnx,ort-int8", "--inputs", "8", "--calibration", "8",
               "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bundle"] == str(out)  # stdout is only the JSON document
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgegan export: ")]
    stages = [ln.removeprefix("edgegan export: ") for ln in lines]
    assert stages[0] == "loading model"
    for fmt in ("onnx", "ort-int8"):
        assert f"converting {fmt}" in stages and f"verifying {fmt}" in stages
        assert f"{fmt}: ok" in stages
    assert stages.index("converting onnx") < stages.index("onnx: ok") < stages.index("converting ort-int8")
    assert any(s.startswith("measuring host latency") for s in stages)
    assert (out / "report.md").is_file()


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """dcgan-tiny compressed to 3 bits by the CLI (the checkpoint names its base and its weights)."""
    from edgegan.cli.main import main

    ckpt = tmp_path_factory.mktemp("ckpt") / "q3.pt"
    assert main(["compress", "dcgan-tiny", "--method", "quant", "--bits", "3", "--out", str(ckpt)]) == 0
    return ckpt


def test_export_of_a_compressed_checkpoint_reports_psnr_vs_the_base_model_too(quantized, tmp_path):
    from edgegan.models import load_generator
    from edgegan.pipeline import ExportConfig, run_export
    from edgegan.verify.host import fidelity

    out, manifest = run_export(ExportConfig(model=str(quantized), out=str(tmp_path / "b"), formats=["onnx"],
                                            n_inputs=8, calibration=8, latency_rounds=1, latency_runs=2))
    assert manifest["reference"]["source"] == "float model dcgan-tiny-q3"
    base_info = manifest["export"]["base_reference"]
    assert base_info["model"] == "dcgan-tiny" and base_info["used"] is True
    # independent expectation: the base and the compressed model run by torch on the stored inputs
    inputs = np.load(out / "inputs.npy")
    with torch.no_grad():
        base_out = load_generator("dcgan-tiny").module(torch.from_numpy(inputs)).numpy()
        q_out = load_generator(str(quantized)).module(torch.from_numpy(inputs)).numpy()
    expected = fidelity(q_out, base_out)["psnr_db"]
    assert base_info["float_psnr_db"] == pytest.approx(expected, abs=0.05)
    onnx = manifest["artifacts"][0]["fidelity"]
    assert onnx["psnr_db"] is None or onnx["psnr_db"] > 80  # onnx == the compressed float model
    assert onnx["vs_base"]["psnr_db"] == pytest.approx(expected, abs=0.05)  # and 3 bits away from the base
    assert onnx["psnr_db"] is None or expected < onnx["psnr_db"] - 10  # the two references really differ
    row = report_rows((out / "report.md").read_text())["onnx"]
    assert row[4] == f"{onnx['vs_base']['psnr_db']:.2f}"


def test_base_with_other_weights_is_not_compared_and_says_why(tmp_path):
    from edgegan.compress import apply_method, save_compressed
    from edgegan.models import load_generator
    from edgegan.pipeline import ExportConfig, run_export

    base = load_generator("dcgan-tiny")
    with torch.no_grad():
        next(base.module.parameters()).mul_(1.5)  # e.g. --checkpoint weights for the zoo architecture
    ckpt, _, _ = save_compressed(apply_method(base, "quant", {"bits": 4}), tmp_path / "q.pt", base=base,
                                 base_model="dcgan-tiny")
    _, manifest = run_export(ExportConfig(model=str(ckpt), out=str(tmp_path / "b"), formats=["onnx"],
                                          n_inputs=4, calibration=4, latency_rounds=1, latency_runs=2))
    info = manifest["export"]["base_reference"]
    assert info["used"] is False and "weights differ" in info["reason"]
    assert "vs_base" not in manifest["artifacts"][0]["fidelity"]
    assert "not compared (its weights differ" in (tmp_path / "b" / "report.md").read_text()


def test_uncompressed_export_has_no_base_reference(tiny_bundle):
    _, manifest = tiny_bundle
    assert "base_reference" not in manifest["export"]
