"""Per-op profiles of .pte files (edgegan.devices.per_op): a real ExecuTorch program of the tiny
zoo ResNet, lowered here with the XNNPACK partitioner, run with ETDump on and read back with
the Inspector. Expectations come from the torch module (how many InstanceNorm / reflect pads
it has) and from the lowered graph, never from the profiler's own output."""
from __future__ import annotations

import io
import json
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("executorch.exir", reason="needs the executorch extra")

from edgegan.devices.per_op import (  # noqa: E402
    PerOpProfile, debug_buffer_bytes, instance_times, profile_pte, program_ops, _run_child)
from edgegan.errors import ArtifactRunError  # noqa: E402

INSTANCE_NORM = "aten::_native_batch_norm_legit.no_stats_out"
PAD_INDEX = "aten::index.Tensor_out"  # a decomposed ReflectionPad2d indexes rows, then columns


def _lower(image_size: int, tmp_path):
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgegan.models.loading import load_generator

    module = load_generator("resnet-tiny", config={"image_size": image_size}).module.eval()
    x = torch.rand(1, 3, image_size, image_size) * 2 - 1
    edge = to_edge_transform_and_lower(torch.export.export(module, (x,)), partitioner=[XnnpackPartitioner()])
    graph = Counter()
    for n in edge.exported_program().graph.nodes:
        if n.op == "call_function" and "getitem" not in str(n.target):
            graph[getattr(n.target, "__name__", str(n.target))] += 1
    path = tmp_path / f"resnet_{image_size}.pte"
    path.write_bytes(edge.to_executorch().buffer)
    return module, x.numpy(), graph, path


@pytest.fixture(scope="module")
def lowered(tmp_path_factory):
    return _lower(40, tmp_path_factory.mktemp("pte"))


@pytest.fixture(scope="module")
def profile(lowered, tmp_path_factory):
    _, x, _, path = lowered
    keep = tmp_path_factory.mktemp("etdump")
    return profile_pte(path, x, "executorch-fp32", runs=5, threads=1, keep=keep), keep


def _graph_count(graph: Counter, prefix: str) -> int:
    return sum(v for k, v in graph.items() if k.startswith(prefix))


def test_ranking_has_the_portable_instance_norms_pads_and_delegate_calls(lowered, profile):
    import torch

    module, _, graph, _ = lowered
    prof, _ = profile
    ops = {o.op: o for o in prof.ops}
    norms = sum(isinstance(m, torch.nn.InstanceNorm2d) for m in module.modules())
    pads = sum(isinstance(m, torch.nn.ReflectionPad2d) for m in module.modules())
    assert norms >= 3 and pads >= 3  # the model under test has what the test is about
    assert ops[INSTANCE_NORM].kind == "portable" and ops[INSTANCE_NORM].count == norms
    assert ops[PAD_INDEX].kind == "portable" and ops[PAD_INDEX].count == 2 * pads
    delegate = ops["XnnpackBackend call"]
    assert delegate.kind == "delegate" and delegate.backend == "XnnpackBackend"
    assert delegate.count == graph["executorch_call_delegate"] > 0
    # ranked by time, every op timed, and they add up to (at most) the inference
    totals = [o.total_ms for o in prof.ops]
    assert totals == sorted(totals, reverse=True)
    assert all(o.total_ms > 0 and o.count >= 1 for o in prof.ops)
    assert prof.execute_ms > 0 and sum(totals) <= prof.execute_ms * 1.001
    # inside the delegate calls: XNNPACK's own ops, the convolutions among them
    assert any("Convolution" in o.op and o.backend == "XnnpackBackend" for o in prof.delegated_ops)


def test_portable_counts_match_the_lowered_graph(lowered, profile):
    """Every portable kernel the lowered graph keeps outside XNNPACK, counted from the graph,
    appears in the measured ranking with that count (and in the .pte's instruction list)."""
    _, _, graph, path = lowered
    prof, _ = profile
    expected = {name: n for name, n in graph.items() if name != "executorch_call_delegate"}
    measured = {o.op: o.count for o in prof.ops if o.kind == "portable"}
    assert sum(measured.values()) == sum(expected.values())
    for name, n in expected.items():  # graph names aten.abs.default -> kernel aten::abs.out
        base = name.split(".")[1]  # aten.abs.default -> abs
        assert sum(c for op, c in measured.items() if op.split("::")[1].split(".")[0] == base) == n, name
    static = program_ops(path)
    assert static.kernel_calls == measured and static.delegate_calls == {"XnnpackBackend": graph["executorch_call_delegate"]}


def test_instance_times_list_every_occurrence_in_execution_order(lowered):
    """One row per op occurrence, in the order the program runs them: the portable kernels as
    many times as the lowered graph holds them, one row per delegate call, XNNPACK's own ops in
    between, the first op of the program first."""
    import torch

    module, x, graph, path = lowered
    rows = instance_times(path, x, runs=5, threads=1, warmup=1)
    names = [n for n, _, _ in rows]
    norms = sum(isinstance(m, torch.nn.InstanceNorm2d) for m in module.modules())
    assert sum(n.startswith("native_call__native_batch_norm_legit") for n in names) == norms
    assert names.count("DELEGATE_CALL") == graph["executorch_call_delegate"]
    portable = sum(v for k, v in graph.items() if k != "executorch_call_delegate")
    assert sum(n.startswith("native_call_") for n in names) == portable
    assert any(" #" in n and "Convolution" in n for n in names)  # XNNPACK ops, numbered per kind
    assert all(mean >= 0 and med >= 0 for _, mean, med in rows)
    # resnet-tiny begins with a reflect pad (portable, as lowered here) before any convolution
    first_conv = next(i for i, n in enumerate(names) if "Convolution" in n)
    assert any(n.startswith("native_call_") for n in names[:first_conv])


def test_debug_buffer_is_sized_from_the_model_and_holds_every_output(lowered, profile, tmp_path):
    _, x, _, path = lowered
    prof, keep = profile
    assert prof.outputs_captured and prof.outputs_captured > 0  # the capture run filled the buffer
    assert (keep / "outputs.etdp").is_file() and (keep / "debug_buffer.bin").stat().st_size == prof.debug_buffer_bytes
    # a bigger model needs a bigger buffer: 4x the pixels, about 4x the bytes
    _, _, _, bigger = _lower(80, tmp_path)
    ratio = debug_buffer_bytes(bigger) / debug_buffer_bytes(path)
    assert 3.0 < ratio < 4.5
    assert debug_buffer_bytes(path, runs=3) > 2.5 * debug_buffer_bytes(path)  # per run, not per program


def test_a_too_small_debug_buffer_fails_the_capture_not_the_caller(lowered, tmp_path):
    """The runtime aborts the process when the buffer overflows: the child dies, we get a typed error."""
    _, x, _, path = lowered
    np.save(tmp_path / "in.npy", x)
    job = {"pte": str(path), "input": str(tmp_path / "in.npy"), "runs": 1, "warmup": 0, "threads": 1,
           "etdump": str(tmp_path / "e.etdp"), "debug_buffer_bytes": 4096,
           "outputs_etdump": str(tmp_path / "o.etdp"), "debug_buffer": str(tmp_path / "d.bin")}
    with pytest.raises(ArtifactRunError, match="per-op capture of resnet_40.pte crashed|exited"):
        _run_child(job, tmp_path, timeout_s=300)


def test_per_op_json_round_trips_and_renders(profile, tmp_path):
    from rich.console import Console

    from edgegan.cli.profile import print_per_op_tables

    prof, _ = profile
    path = prof.save(tmp_path / "executorch-fp32" / "per_op.json")
    back = PerOpProfile.load(path)
    assert back.to_dict() == json.loads(path.read_text()) == prof.to_dict()
    assert back.ops[0].op == prof.ops[0].op and back.program.kernel_calls == prof.program.kernel_calls
    doc = {"results": [{"format": "executorch-fp32", "per_op": {"file": "executorch-fp32/per_op.json",
                                                                 "note": "per-op times are this host's"}},
                       {"format": "onnx", "per_op": None},
                       {"format": "executorch-int8", "per_op": {"reason": "capture crashed"}}]}
    buf = io.StringIO()
    print_per_op_tables(doc, tmp_path, Console(file=buf, width=160, color_system=None))
    text = buf.getvalue()
    assert INSTANCE_NORM in text and "portable kernel" in text and "delegate call" in text
    assert "this host's" in text and "executorch-int8 per-op: none (capture crashed)" in text


PTE = "executorch-int8"  # lowered as exported (rewrite off): InstanceNorm / reflect pad stay on portable kernels


@pytest.fixture(scope="module")
def pte_bundle(tmp_path_factory):
    from edgegan.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("bundle") / "b"
    bundle, _ = run_export(ExportConfig(model="resnet-tiny", formats=["onnx", PTE], n_inputs=4, calibration=8,
                                        latency_rounds=1, latency_runs=2, out=str(out),
                                        convert={"formats": {PTE: {"rewrite": False}}}))
    return bundle


def test_profile_per_op_matches_what_the_converter_recorded(pte_bundle, tmp_path):
    """export -> profile --per-op on this host: the .pte row gets a per_op.json whose portable
    kernels and delegate calls are the ones the converter counted in the lowered graph
    (bundle.json), measured; the onnx row gets none."""
    from edgegan.bundle import Bundle
    from edgegan.devices.profile import ProfileConfig, run_profile
    from edgegan.results import ProfileRun, ResultsLayout

    out, _ = run_profile(ProfileConfig(bundle=str(pte_bundle), formats=["onnx", PTE], runs=3, warmup=1,
                                       memory=False, compare=False, per_op=True, out=str(tmp_path / "r")))
    run = ProfileRun.load(out)
    assert run.row("onnx").per_op is None  # only runtimes with an event tracer
    info = run.row(PTE).per_op
    assert info["file"] == f"{PTE}/per_op.json" and info["captured_on"] == "host" and info["note"] == ""
    prof = PerOpProfile.load(ResultsLayout(out).per_op(PTE))
    rec = Bundle.load(pte_bundle).artifact(PTE)
    assert prof.artifact_sha256 == rec.sha256 and prof.runs == 3 and prof.warmup == 1
    recorded = {**rec.quantization["ops_portable"], **rec.quantization["quant_ops_portable"]}
    measured = {o.op: o.count for o in prof.ops if o.kind == "portable"}
    assert sum(measured.values()) == sum(recorded.values())
    for name, n in recorded.items():  # aten.abs -> aten::abs.out, aten.index -> aten::index.Tensor_out
        base = name.split(".")[1]
        assert sum(c for op, c in measured.items() if op.split("::")[1].split(".")[0] == base) == n, name
    calls = [o for o in prof.ops if o.kind == "delegate"]
    assert sum(o.count for o in calls) == rec.quantization["delegate_calls"]
    assert [t["op"] for t in info["top"]] == [o.op for o in prof.ops[:5]]


def test_a_device_without_an_executorch_runtime_fails_the_pte_row_with_why(pte_bundle, tmp_path):
    """A 'device' python (this host's, 3.11) that has neither executorch nor executorch-numpy-runtime:
    the .pte row fails naming the runtime, why setup would not install it there, and what to do;
    the onnx row is unaffected."""
    import stat
    import sys

    from edgegan.devices.profile import ProfileConfig, run_profile
    from edgegan.devices.transport import TargetOptions

    hide = tmp_path / "hide"
    for pkg in ("executorch", "executorch_numpy_runtime"):
        (hide / pkg).mkdir(parents=True)
        (hide / pkg / "__init__.py").write_text("raise ImportError('not on this board')\n")
    py = tmp_path / "py"
    py.write_text(f'#!/bin/sh\nPYTHONPATH={hide} exec {sys.executable} "$@"\n')
    py.chmod(py.stat().st_mode | stat.S_IXUSR)
    _, doc = run_profile(ProfileConfig(bundle=str(pte_bundle), formats=["onnx", PTE], runs=3, warmup=1,
                                       memory=False, compare=False, out=str(tmp_path / "r"),
                                       target_options=TargetOptions(python=str(py))))
    rows = {r["format"]: r for r in doc["results"]}
    assert rows["onnx"]["status"] == "ok"
    why = rows[PTE]["reason"]
    assert rows[PTE]["status"] == "failed" and why.startswith("no executorch runtime on the device")
    py_version = ".".join(map(str, sys.version_info[:2]))
    if sys.version_info < (3, 12):  # this venv's python is the 'board' python
        assert f"Python {py_version}" in why and "executorch-numpy-runtime needs Python >= 3.12" in why
        assert "libtorch" in why
