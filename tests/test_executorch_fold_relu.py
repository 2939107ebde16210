"""executorch-int8's ReLU folding (edgegan.quantdebug.pt2e.fold_relus, option ``fold_relu``): a
ReLU whose quantize clamps at 0.0 anyway is dropped, exact in the PT2E graph and in the lowered
.pte run by the real ExecuTorch runtime; the delegation record shows XNNPACK no longer runs it."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("executorch.exir", reason="the [executorch] extra is not installed")
from torch import nn  # noqa: E402

from edgegan.converters.executorch_rewrite import KEEP_FLOAT, delegation_rewrite  # noqa: E402
from edgegan.quantdebug.pt2e import fold_relus, pt2e_quantize  # noqa: E402


def _model() -> nn.Module:
    """A CycleGAN block in small: conv -> InstanceNorm -> ReLU -> reflect pad -> conv, twice."""
    torch.manual_seed(3)
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 8, 3), nn.InstanceNorm2d(8), nn.ReLU(True),
                         nn.ReflectionPad2d(1), nn.Conv2d(8, 8, 3), nn.InstanceNorm2d(8, affine=True), nn.ReLU(True),
                         nn.Conv2d(8, 3, 1), nn.Tanh()).eval()


def _inputs(n: int = 12) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, 3, 12, 12)).astype(np.float32)


def _relus(graph) -> int:
    return sum(n.op == "call_function" and "relu" in str(n.target) for n in graph.nodes)


@pytest.fixture(scope="module")
def rewritten():
    x = _inputs()
    done = delegation_rewrite(_model(), x[:4], equalize=x)
    return done.module, x


def test_folded_graph_drops_the_relus_and_computes_the_same_values(rewritten):
    module, x = rewritten
    ep = torch.export.export(module, (torch.from_numpy(x[:1]),))
    plain = pt2e_quantize(ep.module(), x, keep_float=KEEP_FLOAT)
    folded = pt2e_quantize(torch.export.export(module, (torch.from_numpy(x[:1]),)).module(), x,
                           keep_float=KEEP_FLOAT, fold_relu=True)
    assert _relus(plain.converted.graph) == 2 and plain.relus_folded == 0
    assert _relus(folded.converted.graph) == 0 and folded.relus_folded == 2
    with torch.no_grad():
        for i in range(len(x)):
            xi = torch.from_numpy(x[i: i + 1])
            assert torch.equal(plain.converted(xi), folded.converted(xi))


def test_a_relu_before_a_quantize_that_keeps_negatives_stays():
    """zero point above quant_min: the quantize represents negative values, the ReLU is needed."""
    import torchao.quantization.pt2e  # noqa: F401 - registers quantized_decomposed ops

    q = torch.ops.quantized_decomposed

    class M(nn.Module):
        def forward(self, x):
            relu = torch.ops.aten.relu.default
            kept = q.quantize_per_tensor.default(relu(x), 0.05, -10, -128, 127, torch.int8)
            dropped = q.quantize_per_tensor.default(relu(x * 2), 0.05, -128, -128, 127, torch.int8)
            return kept, dropped

    gm = torch.fx.symbolic_trace(M())
    x = torch.linspace(-8, 8, 101)
    before = gm(x)
    assert fold_relus(gm) == 1 and _relus(gm.graph) == 1
    after = gm(x)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])


def test_lowered_pte_is_bit_identical_and_xnnpack_runs_no_relu(rewritten, tmp_path):
    """Both forms lowered by the converter's worker and run by the real ExecuTorch runtime: the
    same int8 outputs, close to float; the folded one's delegation record has no ReLU."""
    from executorch.runtime import Runtime

    from edgegan.converters.executorch_worker import convert

    module, x = rewritten
    program = tmp_path / "p.pt2"
    torch.export.save(torch.export.export(module, (torch.from_numpy(x[:1]),)), str(program))
    np.save(tmp_path / "cal.npy", x)
    outs, reports = {}, {}
    for fold in (False, True):
        pte = tmp_path / f"m_{fold}.pte"
        reports[fold] = convert({"program": str(program), "mode": "int8", "out": str(pte),
                                 "calibration": str(tmp_path / "cal.npy"), "fold_relu": fold})
        method = Runtime.get().load_program(str(pte)).load_method("forward")
        outs[fold] = np.concatenate([method.execute([torch.from_numpy(x[i: i + 1])])[0].numpy()
                                     for i in range(len(x))])
    assert reports[False]["ops_delegated"].get("aten.relu", 0) >= 1
    assert "aten.relu" not in reports[True]["ops_delegated"] and reports[True]["relus_folded_into_quantize"] == 2
    assert reports[True]["fully_delegated"] and reports[True]["delegate_calls"] == 1
    np.testing.assert_array_equal(outs[True], outs[False])
    with torch.no_grad():
        ref = _model()(torch.from_numpy(x)).numpy()
    psnr = 10 * np.log10(4 / np.mean((outs[True] - ref) ** 2))
    assert psnr > 30, psnr
