"""Export's and profile's tables at 80 columns (a terminal) and in a log (not a terminal): no
value cut or split, one set of status marks, and profile applying the bundle's threshold."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from edgegan.cli.profile import print_profile_table
from edgegan.cli.render import fitted_table, print_fidelity_table
from edgegan.converters import CONVERTERS
from edgegan.reports.profile_report import markdown
from edgegan.results import STATUS_MARKS, ok_psnr_db_of, shown_reason, shown_status


def terminal(width: int) -> Console:
    return Console(width=width, file=io.StringIO(), force_terminal=True, color_system=None, record=True)


def printed(console: Console) -> list[str]:
    """The printed lines; every table line has both its borders (nothing cropped at the edge)."""
    lines = console.export_text().splitlines()
    for line in lines:
        if line[:1] in "┏┃┡│└":
            assert line[-1] in "┓┃┩│┘", line
    return lines


def manifest() -> dict:
    arts = []
    for i, fmt in enumerate(name for name, _ in CONVERTERS.items()):
        status = "degraded" if fmt == "tflite-int8" else "ok"
        arts.append({"format": fmt, "status": status, "bytes": 14_331_904 // (i + 1), "size_ratio": 1 / (i + 1),
                     "reason": "PSNR 19.4 dB < 30 dB" if status == "degraded" else None,
                     "fidelity": {"psnr_db": 19.392 if status == "degraded" else 47.731 + i,
                                  "max_abs_err": 0.0123456, "mean_abs_err": 0.00123456},
                     "host_latency_ms": {"median": 12.3456 + i, "ratio_vs_float_same_runtime": 0.29,
                                         "ratio_vs_fastest_float": 1.43, "threads": 2}})
    return {"model": {"name": "resnet-sketch", "params": 1_234_567, "macs": 2.5e9}, "inputs": {"count": 64},
            "artifacts": arts, "host": {"cpu": "Intel(R) Xeon(R) Processor", "arch": "x86_64"}}


def test_fidelity_table_fits_80_columns_without_cutting_a_value():
    c = terminal(80)
    m = manifest()
    print_fidelity_table(m, Path("bundles/resnet-sketch"), console=c)
    lines = printed(c)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "…" not in text
    for a in m["artifacts"]:  # every format name and its essential numbers whole, on the format's own line
        row = next(line for line in lines if f" {a['format']} " in line)
        assert f"{a['fidelity']['psnr_db']:.1f}" in row and f"{a['host_latency_ms']['median']:.3f}" in row
        assert f"{a['bytes'] / 1e6:.2f} MB" in row
        assert STATUS_MARKS[a["status"]] in row
    assert "not shown at 80 columns: " in text and "mean abs" in text.split("not shown at 80 columns: ")[1]


def test_a_log_gets_every_column():
    c = terminal(220)
    print_fidelity_table(manifest(), Path("b"), console=c)
    text = c.export_text()
    assert "not shown" not in text and "1.23e-03" in text and "0.29×" in text


def test_fitted_table_drops_by_order_and_never_the_essentials():
    cols = [("name", "left", 0), ("a long optional header", "right", 1), ("value", "right", 0), ("extra", "right", 2)]
    rows = [["tflite-dynamic", "1.0", "19.392", "x" * 30]]
    _, dropped = fitted_table("t", cols, rows, 40)
    assert dropped == ["extra"]
    _, dropped = fitted_table("t", cols, rows, 20)
    assert dropped == ["a long optional header", "extra"]  # essentials stay even when too wide


def profile_doc(thresholds: dict | None) -> dict:
    ok = {"format": "tflite-int8", "status": "ok", "runtime": "litert", "latency_ms": {"p50": 1.234, "p99": 2.5},
          "model_load_ms": 12.0, "first_inference_ms": 3.0, "peak_memory_mb": 91.0, "memory_method": "VmHWM",
          "power": {"provenance": "unavailable"}, "quality": {"psnr_db": 22.9, "knn_precision": 0.5, "knn_recall": 0.25}}
    good = {**ok, "format": "onnx", "runtime": "onnxruntime", "quality": {"psnr_db": 57.2}}
    failed = {"format": "tflite-fp16", "status": "failed", "reason": "no litert runtime on the device"}
    bundle = {"model": "resnet-sketch", "inputs": 64}
    if thresholds is not None:
        bundle["thresholds"] = thresholds
    return {"bundle": bundle, "target": "ssh://pi@board", "device": {"arch": "aarch64", "cpu": "Cortex-A76"},
            "results": [good, ok, failed], "complete": True, "created": "2026-11-30", "settings": {}}


def test_profile_applies_the_bundles_threshold_and_export_marks():
    doc = profile_doc({"ok_psnr_db": 30.0})
    assert ok_psnr_db_of(doc) == 30.0
    assert [shown_status(r, 30.0) for r in doc["results"]] == ["ok", "degraded", "failed"]
    c = terminal(80)
    print_profile_table(doc, Path("results/x"), console=c)
    lines = printed(c)
    assert max(len(line) for line in lines) <= 80 and "…" not in "\n".join(lines)
    assert "▲ degraded" in next(line for line in lines if " tflite-int8 " in line)
    assert "✔ ok" in next(line for line in lines if " onnx " in line)
    assert "✘ failed" in next(line for line in lines if " tflite-fp16 " in line)
    assert "tflite-int8: PSNR 22.9 dB < 30 dB (the bundle's threshold)" in lines
    assert "tflite-fp16: no litert runtime on the device" in lines
    assert not {"✅", "❌"} & set("\n".join(lines))
    report = markdown(doc, None, [])
    assert "▲ degraded PSNR 22.9 dB < 30 dB" in report and "✅" not in report


def test_results_without_recorded_thresholds_show_the_measured_status():
    doc = profile_doc(None)
    assert ok_psnr_db_of(doc) is None
    assert [shown_status(r, None) for r in doc["results"]] == ["ok", "ok", "failed"]
    assert shown_reason(doc["results"][1], None) == ""


@pytest.mark.parametrize("status", ["ok", "degraded", "failed", "incomplete"])
def test_every_status_has_one_mark(status):
    assert STATUS_MARKS[status].endswith(status)


def test_models_tables_fit_80_columns_with_full_names():
    from edgegan.cli.models import family_rows, print_tables, zoo_rows

    c = terminal(80)
    print_tables(zoo_rows(), family_rows(), c)
    lines = printed(c)
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80 and "…" not in text
    for name in ("resnet-sketch", "dcgan-digits", "resnet_sketch.pt", "11,378,179"):
        assert name in text
    # every long name whole in its own cell, and each description printed in full (below the table)
    assert any(line.startswith("│ resnet-sketch ") for line in lines)
    assert "resnet-sketch: ResNet ngf 16, 6 blocks, trained to turn 64x64 photo patches into pencil sketches" in \
        " ".join(line.strip() for line in lines)
