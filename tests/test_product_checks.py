"""Checks that fail when the product silently does the wrong thing (issue 16, items 15-18):
each looks at the artifact or the data itself, not at what the code reports about itself."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest


# ------------------------------------------------------------------ each format is what it says
def _tflite_weight_dtypes(path) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    # every tensor with more than 64 elements: the weights are among them (float I/O and
    # dequantized copies may add float32 ones, so the check is "the claimed type is there")
    return {np.dtype(t["dtype"]).name for t in interp.get_tensor_details() if int(np.prod(t["shape"])) > 64}


def _onnx_initializer_types(path) -> set[str]:
    import onnx

    m = onnx.load(str(path))
    return {onnx.helper.tensor_dtype_to_np_dtype(i.data_type).name for i in m.graph.initializer if np.prod(i.dims) > 64}


@pytest.mark.parametrize("fmt,weights,size_band", [
    ("onnx", {"float32"}, (0.99, 1.01)),
    ("ort-int8", {"int8"}, (0.2, 0.55)),
    ("tflite-fp32", {"float32"}, (0.99, 1.01)),
    ("tflite-fp16", {"float16"}, (0.4, 0.6)),
    ("tflite-dynamic", {"int8"}, (0.2, 0.45)),
    ("tflite-int8", {"int8"}, (0.2, 0.45)),
])
def test_each_format_stores_the_weights_it_claims(tiny_bundle, fmt, weights, size_band):
    root, manifest = tiny_bundle
    rec = next(a for a in manifest["artifacts"] if a["format"] == fmt)
    assert rec["status"] in ("ok", "degraded"), rec["reason"]
    path = root / rec["path"]
    found = _onnx_initializer_types(path) if path.suffix == ".onnx" else _tflite_weight_dtypes(path)
    assert weights <= found, f"{fmt}: large tensors are {found}, expected {weights} among them"
    lo, hi = size_band
    assert lo <= rec["size_ratio"] <= hi, f"{fmt} size ratio {rec['size_ratio']} outside {size_band}"
    # fidelity band: float formats agree with torch to float precision, reduced ones do not
    psnr = rec["fidelity"]["psnr_db"]
    if weights == {"float32"}:
        assert psnr is None or psnr > 120
    else:
        assert psnr < 120, f"{fmt} at {psnr} dB is as exact as float32: was it quantized at all?"


# ------------------------------------------------------------------ statuses and hashes
def test_a_format_below_the_threshold_is_degraded_and_verify_hashes_sees_tampering(tmp_path):
    from edgegan.bundle import Bundle
    from edgegan.pipeline import ExportConfig, run_export

    path, m = run_export(ExportConfig(model="dcgan-tiny", out=str(tmp_path / "b"), formats=["ort-int8"], n_inputs=8,
                                      calibration=16, latency_rounds=1, latency_runs=2, threads=1,
                                      thresholds={"ok_psnr_db": 120.0}))
    st = {a["format"]: a for a in m["artifacts"]}
    assert st["onnx"]["status"] == "ok"
    assert st["ort-int8"]["status"] == "degraded" and "< 120 dB" in st["ort-int8"]["reason"]
    b = Bundle.load(path)
    assert b.verify_hashes() == []
    f = path / st["ort-int8"]["path"]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    f.write_bytes(bytes(data))
    assert b.verify_hashes() == ["ort-int8"]


def test_a_failed_replacement_keeps_the_old_bundle_whole(tmp_path):
    from edgegan.bundle import BundleWriter, Manifest, ModelInfo, StoredArray

    final = tmp_path / "b"
    m = Manifest(schema_version=1, model=ModelInfo(name="m"), input={}, output={}, inputs=StoredArray(file="inputs.npy"),
                 reference=StoredArray(file="reference.npy"), artifacts=[])
    with BundleWriter(final) as w:
        w.save_array("inputs.npy", np.arange(3, dtype=np.float32))
        w.write_manifest(m)
    before = {p.name: p.read_bytes() for p in final.iterdir() if p.is_file()}
    with pytest.raises(RuntimeError):
        with BundleWriter(final, overwrite=True) as w:
            w.save_array("inputs.npy", np.zeros(3, np.float32))
            raise RuntimeError("a converter crashed mid-export")
    assert {p.name: p.read_bytes() for p in final.iterdir() if p.is_file()} == before


# ------------------------------------------------------------------ metrics on obvious cases
def test_lsh_only_precision_counts_fake_points_near_real_ones():
    """Disjoint sets: no fake sample lies near the real manifold, so precision is ~0 (a version
    that counted the real points instead scored 0.94 here); same distribution: high."""
    from edgegan.metrics.lsh import LSHConfig, lsh_scores

    rng = np.random.default_rng(0)
    real = rng.normal(size=(1500, 16)).astype(np.float32)
    same = rng.normal(size=(1500, 16)).astype(np.float32)
    far = (rng.normal(size=(1500, 16)) + 40.0).astype(np.float32)
    cfg = LSHConfig(seed=0)
    disjoint = lsh_scores(real, far, cfg, variants=("lsh",))
    assert disjoint["lsh_precision"] < 0.05 and disjoint["lsh_recall"] < 0.05
    matched = lsh_scores(real, same, cfg, variants=("lsh",))
    assert matched["lsh_precision"] > 0.6 and matched["lsh_recall"] > 0.6
    # half the fake set far away: precision falls to about half, recall stays (real is still covered)
    mixed = np.concatenate([same[:750], far[:750]])
    half = lsh_scores(real, mixed, cfg, variants=("lsh",))
    assert half["lsh_precision"] == pytest.approx(matched["lsh_precision"] / 2, abs=0.12)
