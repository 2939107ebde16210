"""The post-training sweep runs end to end (quick mode, tiny model) and writes what the docs
show: one CSV row per setting with packed and real sizes, metrics, grids, latency ratios."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_sweep_writes_csv_plot_and_grids(tmp_path):
    csv_path, plot_path = tmp_path / "sweep.csv", tmp_path / "tradeoff.png"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "posttrain_sweep.py"), "--quick", "--model", "dcgan-tiny",
         "--samples", "200", "--out", str(tmp_path / "out"), "--csv", str(csv_path), "--plot", str(plot_path),
         "--latency-rounds", "3", "--latency-runs", "20"],
        check=True, capture_output=True, text=True, timeout=600,
    )
    rows = {r["setting"]: r for r in csv.DictReader(csv_path.open())}
    assert {"float", "q2", "q8-clip99", "sp90-bnr", "cp75-l1", "cp50-norm-scale-bnr"} <= set(rows)
    assert plot_path.stat().st_size > 10_000
    for r in rows.values():
        assert (tmp_path / "out" / r["grid"]).is_file()
        assert int(r["onnx_bytes"]) > 0 and int(r["ort_int8_bytes"]) > 0
    float_row = rows["float"]
    assert int(rows["q2"]["packed_bytes"]) < int(rows["q8"]["packed_bytes"]) < int(float_row["packed_bytes"])
    assert rows["q2"]["onnx_bytes"] == float_row["onnx_bytes"]  # fake-quant: the real file does not shrink
    assert int(rows["cp75-l1"]["onnx_bytes"]) < int(float_row["onnx_bytes"]) / 2
    assert float(rows["cp75-l1"]["latency_ratio_vs_float"]) < 1.0
    assert float(float_row["latency_ratio_vs_float"]) == 1.0
