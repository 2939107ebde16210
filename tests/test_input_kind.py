"""Inputs of user models (issue 18, item 10): no silent latent default for image-shaped inputs,
--inputs-file feeds int8 calibration (or --calibration-file does), and the --input-shape hint
names the model's own shape."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgegan.errors import ConfigError, InputSpecError
from edgegan.models.spec import InputSpec


def _image_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1), nn.Sigmoid()).eval()


@pytest.mark.parametrize("shape", [[3, 32, 32], [1, 8, 8], [4, 64, 48]])
def test_image_like_shape_without_kind_is_refused(shape):
    with pytest.raises(ConfigError, match=r"looks like an image .*--input-kind image .*--input-kind latent") as e:
        InputSpec.from_shape(shape)
    assert "\n" not in str(e.value) and e.value.field == "input_kind"
    img = InputSpec.from_shape(shape, "image")
    assert img.kind == "image" and img.distribution == "uniform"
    lat = InputSpec.from_shape(shape, "latent")
    assert lat.kind == "latent" and lat.distribution == "normal"


@pytest.mark.parametrize("shape", [[100], [100, 1, 1], [3, 4, 4], [5, 32, 32], [3, 32]])
def test_latent_like_shapes_default_to_latent(shape):
    spec = InputSpec.from_shape(shape)
    assert spec.kind == "latent" and spec.distribution == "normal"


def test_api_and_pipeline_refuse_and_zoo_entries_know_their_kind(tmp_path):
    import edgegan
    from edgegan.pipeline import ExportConfig, _input_spec_override

    with pytest.raises(ConfigError, match="--input-kind image"):
        edgegan.load_model(_image_model(), input_shape=(3, 32, 32))
    with pytest.raises(ConfigError, match="looks like an image"):
        _input_spec_override(ExportConfig(model="pkg:factory", input_shape=[3, 32, 32], formats=["onnx"]))
    # a zoo model's own spec is used whatever --input-shape says, so nothing to refuse
    assert _input_spec_override(ExportConfig(model="resnet-tiny", input_shape=[3, 40, 40], formats=["onnx"])) is None


def _input_zero_point(path) -> int:
    """Zero point of the QuantizeLinear that quantizes the graph input (what calibration saw)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    q = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == m.graph.input[0].name)
    return int(inits[q.input[2]])


def _export(tmp_path, name, **options):
    import edgegan

    return edgegan.export(_image_model(), tmp_path / name, formats=["onnx", "ort-int8"], input_shape=[3, 16, 16],
                          input_kind="image", latency_rounds=1, latency_runs=2, **options)


def test_inputs_file_feeds_calibration_and_calibration_file_overrides(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 1, (12, 3, 16, 16)).astype(np.float32)  # real images in [0, 1]
    np.save(tmp_path / "x.npy", data)
    b = _export(tmp_path, "from_inputs", inputs_file=str(tmp_path / "x.npy"), calibration=5)
    cal = np.load(b.root / "calibration.npy")
    assert cal.shape == (5, 3, 16, 16) and all(any(np.array_equal(c, d) for d in data) for c in cal)
    assert b.manifest.calibration.source == f"inputs file {tmp_path / 'x.npy'} (5 of its 12 rows)"
    assert _input_zero_point(b.root / b.manifest.artifact("ort-int8").path) == 0  # calibrated on [0, 1] (uint8 min 0)

    drawn = _export(tmp_path, "drawn", n_inputs=4, calibration=5)  # no file: uniform [-1, 1] images
    assert 100 < _input_zero_point(drawn.root / drawn.manifest.artifact("ort-int8").path) < 156

    cal_data = rng.uniform(-1, 1, (7, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "cal.npy", cal_data)
    c = _export(tmp_path, "cal_file", inputs_file=str(tmp_path / "x.npy"), calibration_file=str(tmp_path / "cal.npy"))
    assert np.array_equal(np.load(c.root / "calibration.npy"), cal_data)
    assert c.manifest.calibration.source == f"calibration file {tmp_path / 'cal.npy'}" and c.manifest.calibration.count == 7
    assert 100 < _input_zero_point(c.root / c.manifest.artifact("ort-int8").path) < 156

    np.save(tmp_path / "wrong.npy", cal_data[:, :, :8])
    with pytest.raises(InputSpecError, match=r"takes \[N, 3, 16, 16\]"):
        _export(tmp_path, "wrong", calibration_file=str(tmp_path / "wrong.npy"))


LINEAR = '''
from torch import nn


def make():
    return nn.Sequential(nn.Linear(100, 3 * 8 * 8), nn.Unflatten(1, (3, 8, 8)), nn.Tanh())
'''


def test_shape_hint_is_the_models_own(cli, tmp_path):
    (tmp_path / "linear_gen.py").write_text(LINEAR)
    r = cli("export", "linear_gen:make", "--input-shape", "100,1,1", "--formats", "onnx", "--out",
            str(tmp_path / "b"), cwd=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == InputSpecError.exit_code and len(lines) == 1, r.stderr
    assert "rejects inputs of shape [N, 100, 1, 1]" in lines[0]
    assert "e.g. 100 (its first layer is Linear(100, ...)) and --input-kind latent" in lines[0]
    assert "100,1,1 for" not in lines[0]
