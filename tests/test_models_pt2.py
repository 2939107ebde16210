"""``torch.export`` ``.pt2`` generators (issue 18, item 5): a static batch (torch.export's default,
at batch 1 or another size) and a dynamic batch both export, report their real MACs and get the
sub-pixel ConvTranspose rewrite zoo models get for int8."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgegan.errors import CheckpointError
from edgegan.export.rewrite import subpixel_rewrite
from edgegan.models import load_generator
from edgegan.models.stats import count_macs

LATENT = 32
# Linear 32 -> 256, ConvT 16->8 k4 s2 on 4x4, ConvT 8->3 k4 s2 on 8x8 (MACs = in*out*k*k*H_in*W_in)
EXPECTED_MACS = 32 * 256 + 16 * 8 * 16 * 4 * 4 + 8 * 3 * 16 * 8 * 8


class LinearDCGAN(nn.Module):
    """A user-style DCGAN head: Linear -> reshape -> two stride-2 transposed convs (BN between)."""

    def __init__(self, batch_in_view: bool = False) -> None:
        super().__init__()
        self.batch_in_view = batch_in_view
        self.fc = nn.Linear(LATENT, 16 * 4 * 4)
        self.up = nn.Sequential(nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        h = self.fc(z)
        h = h.view(z.shape[0], 16, 4, 4) if self.batch_in_view else h.view(-1, 16, 4, 4)
        return self.up(h)


def _model(batch_in_view: bool = False) -> nn.Module:
    torch.manual_seed(0)
    m = LinearDCGAN(batch_in_view)
    with torch.no_grad():  # a trained-looking BatchNorm, so folding it is not a no-op
        m.up[1].running_mean.uniform_(-0.5, 0.5)
        m.up[1].running_var.uniform_(0.5, 2.0)
    return m.eval()


def _save(tmp_path, name: str, batch: int | None, batch_in_view: bool = False):
    """A .pt2 exported at a fixed ``batch`` (torch.export's default) or with a dynamic batch (None)."""
    m = _model(batch_in_view)
    if batch is None:
        ep = torch.export.export(m, (torch.randn(2, LATENT),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    else:
        ep = torch.export.export(m, (torch.randn(batch, LATENT),))
    path = tmp_path / f"{name}.pt2"
    torch.export.save(ep, path)
    return path, m


@pytest.mark.parametrize("batch", [None, 1, 4])
def test_loads_runs_any_batch_counts_macs_and_rewrites(tmp_path, batch):
    path, eager = _save(tmp_path, f"g{batch}", batch)
    loaded = load_generator(str(path))
    assert loaded.input_spec.shape == [LATENT]
    x = loaded.sample_inputs(5, 3)  # 5: neither 1 nor 4
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(torch.from_numpy(x)), eager(torch.from_numpy(x)), atol=1e-6, rtol=0)
    assert count_macs(loaded.module, x) == EXPECTED_MACS
    new, report = subpixel_rewrite(loaded.module, x[:3])
    assert len(report.rewrites) == 2 and "BatchNorm folded" in report.rewrites[0]
    ops = [n.target for n in new.graph.nodes if n.op == "call_function"]
    assert torch.ops.aten.conv_transpose2d.input not in ops and torch.ops.aten.batch_norm.default not in ops
    fresh = torch.from_numpy(loaded.sample_inputs(7, 11))
    with torch.no_grad():
        torch.testing.assert_close(new(fresh), eager(fresh), atol=1e-5, rtol=0)


def test_fixed_batch_graph_that_needs_its_batch_is_one_line_refusal(tmp_path):
    path, _ = _save(tmp_path, "g4_fixed_view", 4, batch_in_view=True)
    with pytest.raises(CheckpointError) as e:
        load_generator(str(path))
    msg = str(e.value)
    assert "\n" not in msg and "fixed batch of 4 and its graph only runs that batch" in msg
    assert "re-export it at batch 1" in msg and "dynamic_shapes" in msg


@pytest.mark.parametrize("batch", [None, 4])
def test_export_bundle_records_macs_and_int8_rewrite(tmp_path, batch):
    from edgegan.pipeline import ExportConfig, run_export

    path, _ = _save(tmp_path, f"e{batch}", batch)
    _, manifest = run_export(ExportConfig(model=str(path), formats=["onnx", "ort-int8"], n_inputs=8, calibration=16,
                                          out=str(tmp_path / "b"), latency_rounds=1, latency_runs=2))
    assert manifest["model"]["macs"] == EXPECTED_MACS
    rows = {a["format"]: a for a in manifest["artifacts"]}
    assert rows["onnx"]["status"] == "ok" and rows["ort-int8"]["status"] == "ok"
    names = [r["rewrite"] for r in rows["ort-int8"]["rewrites"]]
    assert [n.split(":")[1].strip() for n in names[:2]] == [
        "ConvTranspose k4 s2 p1 -> pad + Conv 2x2 (4 phases) + DepthToSpace + crop (BatchNorm folded)",
        "ConvTranspose k4 s2 p1 -> pad + Conv 2x2 (4 phases) + DepthToSpace + crop"]
    assert sorted(names[2:]) == [
        "DepthToSpace CRD -> DCR (conv channels permuted) x2",  # both interleaves, for the channels-last form
        "DepthToSpace as channels-last reshape + transpose (ORT's layout transposes cancel) x2",
        "Relu moved before DepthToSpace / crop (runs on the int8 tensor) x1",  # after the first
        "conv with < 16 output channels widened to 16 (zero channels, sliced off) x1"]  # the last
    import onnx

    int8 = onnx.load(str(tmp_path / "b" / rows["ort-int8"]["path"]))
    assert not [n for n in int8.graph.node if n.op_type == "ConvTranspose"]
    assert np.isfinite(rows["ort-int8"]["fidelity"]["psnr_db"])
