"""Feature extractors: registry, shipped digits CNN, pixels, random conv net, user model files."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgegan.errors import CheckpointError, ConfigError, MetricError, UnknownNameError
from edgegan.metrics import EXTRACTORS, extract_features, get_extractor
from edgegan.metrics.digits_cnn import WEIGHTS_PATH
from edgegan.metrics.features import auto_name, box_downsample


@pytest.fixture(scope="module")
def digits():
    from edgegan.datasets import digits_images, digits_labels

    return digits_images(32), digits_labels()


def test_import_metrics_does_not_import_torch():
    code = ("import sys, edgegan.metrics, edgegan.metrics.compare, edgegan.cli.compare; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'tensorflow', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_names_and_unknown_name():
    assert {"digits", "pixels", "randconv", "identity", "file"} <= set(EXTRACTORS)
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        get_extractor("digitz")


def test_auto_choice():
    assert auto_name((64,)) == "identity"
    assert auto_name((1, 32, 32)) == "digits"
    assert auto_name((3, 64, 64)) == "randconv"
    with pytest.raises(ConfigError):
        get_extractor("auto")


def test_shipped_digits_weights_are_small_and_accurate(digits):
    """Held-out accuracy of the shipped classifier (recorded in docs/metrics.md: 0.975)."""
    import torch

    from edgegan.metrics.digits_cnn import load_digits_cnn
    from edgegan.metrics.train_digits_classifier import accuracy, split_indices

    assert WEIGHTS_PATH.stat().st_size < 1_000_000
    images, labels = digits
    _, held = split_indices(labels, seed=0)
    torch.set_num_threads(1)
    assert accuracy(load_digits_cnn(), images[held], labels[held]) >= 0.96


def test_digits_features_separate_classes(digits):
    images, labels = digits
    f = extract_features(images, "digits")
    assert f.shape == (len(images), 64) and f.dtype == np.float32
    # nearest class mean in feature space recovers the label for nearly every image
    means = np.stack([f[labels == c].mean(0) for c in range(10)])
    pred = np.argmin(((f[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == labels).mean() >= 0.95
    # other sizes are resized to 32×32; RGB is refused with a hint
    assert extract_features(images[:8, :, ::2, ::2], "digits").shape == (8, 64)
    with pytest.raises(MetricError, match="1-channel"):
        extract_features(np.zeros((2, 3, 32, 32), np.float32), "digits")


def test_pixels_box_downsample_exact():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    f = extract_features(x, "pixels", {"size": 2})
    np.testing.assert_allclose(f[0], [2.5, 4.5, 10.5, 12.5])
    # uneven bins still average every pixel exactly once
    y = np.random.default_rng(0).normal(size=(3, 2, 7, 5))
    down = box_downsample(y, 3)
    assert down.shape == (3, 2, 3, 3)
    assert extract_features(y[:, :, :2, :2], "pixels").shape == (3, 8)  # never upsampled


def test_randconv_is_deterministic_and_takes_any_channels():
    rng = np.random.default_rng(0)
    rgb = rng.uniform(-1, 1, (6, 3, 48, 48)).astype(np.float32)
    a = extract_features(rgb, "randconv")
    b = extract_features(rgb, "randconv")
    c = extract_features(rgb, "randconv", {"seed": 1})
    assert a.shape == (6, 2 * 32 * 8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert extract_features(rgb[:, :1], "randconv").shape == (6, 512)
    # the features see content: a shifted-brightness set moves away from the original
    assert np.linalg.norm(extract_features(rgb * 0.2, "randconv") - a) > 0.1 * np.linalg.norm(a)
    with pytest.raises(ConfigError, match="size >= 2\\*\\*stages"):
        get_extractor("randconv", {"size": 8})


def test_identity_and_feature_checks():
    x = np.random.default_rng(0).normal(size=(5, 3, 2, 2))
    assert extract_features(x, "identity").shape == (5, 12)
    bad = x.copy()
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(MetricError, match="first at index 2"):
        extract_features(bad, "pixels")
    with pytest.raises(MetricError, match="images"):
        extract_features(np.zeros((4, 10)), "pixels")


def test_user_torchscript_file(tmp_path):
    import torch

    class Net(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3)) * 3.0

    path = tmp_path / "feat.pt"
    torch.jit.script(Net()).save(str(path))
    x = np.random.default_rng(0).uniform(-1, 1, (70, 1, 16, 16)).astype(np.float32)
    f = extract_features(x, str(path), {"channels": 3, "value_range": "0,1", "batch": 32})
    expected = np.repeat(((x + 1) / 2).mean(axis=(2, 3)) * 3.0, 3, axis=1)
    np.testing.assert_allclose(f, expected, rtol=1e-5)


def _onnx_linear(path, weight):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "w"], ["y"])],
        "feat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", weight.shape[1]])],
        [helper.make_tensor("w", TensorProto.FLOAT, list(weight.shape), weight.ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


def test_user_onnx_file_with_resize(tmp_path):
    weight = np.random.default_rng(1).normal(size=(64, 5)).astype(np.float32)
    path = tmp_path / "feat.onnx"
    _onnx_linear(path, weight)
    x = np.random.default_rng(2).uniform(-1, 1, (10, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(extract_features(x, str(path)), x.reshape(10, -1) @ weight, rtol=1e-5, atol=1e-5)
    big = np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)  # 16×16, resized back to 8×8
    f = extract_features(big, "file", {"path": str(path), "input_size": 8})
    assert f.shape == (10, 5)
    with pytest.raises(MetricError, match="failed on input"):
        extract_features(big, str(path))  # wrong size without input_size: one-line error


def test_user_file_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        get_extractor(str(tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="cannot load ONNX"):
        get_extractor(str(junk))
    junk_pt = tmp_path / "junk.pt"
    junk_pt.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="TorchScript"):
        get_extractor(str(junk_pt))
    with pytest.raises(ConfigError, match="needs a path"):
        get_extractor("file")
    with pytest.raises(ConfigError, match="value_range"):
        get_extractor("file", {"path": str(junk), "value_range": "0,2"})
