"""ExecuTorch side of the debugger: where the int8 .pte's PT2E quantization loses its dB, op by op.

What it measures, and why this route: an XNNPACK-lowered DCGAN is ONE delegate call, and
ExecuTorch 1.5.1's ETDump records intermediate outputs per instruction, i.e. per delegate call
(the delegate's inner ops are not logged by XNNPACK), so an ETDump of the .pte gives one tensor
for the whole network: no per-op gap. The per-op numbers therefore come from the .pte's
quantization itself, in torch: the bundle's model is rebuilt (its weights hash must match
bundle.json), exported at batch 1 as the converter does (with the same delegation rewrite when
the artifact records one), quantized by PT2E with the same XNNPACK quantizer and the bundle's
calibration inputs (min/max observers: deterministic, so the scales are the .pte's), and the
converted (quantize/dequantize) graph is compared with the calibrated float graph node by node.
The .pte itself is then run on the same inputs and its gap to this torch twin is reported, so a
difference between the kernels and the fake-quant arithmetic is visible, not assumed away.

Rows: one per requantized tensor (an op output followed by quantize -> dequantize). A row's
"segment" is the float compute between quantization boundaries that produces it (e.g. a
convolution and the ReLU XNNPACK fuses into it); introduced error = that segment alone, fed the
float graph's values through its own input quantizers, with its int8 weights and output
quantizer, vs float; the rest of the total is inherited from upstream.

Heavy imports (torch, executorch, torchao) stay inside functions.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import ConfigError, ConversionError, first_line
from .report import DebugReport, OpNumerics, psnr_db, sqnr_db

log = logging.getLogger(__name__)

BACKEND = "PT2E converted graph vs calibrated float graph (torch), .pte checked against it"
_Q = ("quantize_per_tensor", "quantize_per_channel")
_DQ = ("dequantize_per_tensor", "dequantize_per_channel")
_MOVEMENT = {"view", "reshape", "permute", "flatten", "squeeze", "unsqueeze", "slice", "select", "getitem",
             "expand", "clone", "contiguous", "_assert_tensor_metadata", "t", "transpose"}
_MAC_OPS = ("conv2d", "conv_transpose2d", "convolution", "linear", "conv1d", "conv3d")


def _base(node) -> str:
    """``aten.conv2d.default`` / ``quantized_decomposed.quantize_per_tensor.default`` -> short op name."""
    target = node.target
    name = getattr(target, "__name__", None) or str(target)
    packet = getattr(target, "_overloadpacket", None)
    if packet is not None:
        name = getattr(packet, "__name__", name)
    return name.split(".")[-1] if "." in name and packet is None else name


def _is(node, names: Sequence[str]) -> bool:
    return getattr(node, "op", "") == "call_function" and _base(node) in names


def _qdq_after(node):
    """(quantize, dequantize) that requantize ``node``'s output, or None."""
    for q in node.users:
        if _is(q, _Q):
            for dq in q.users:
                if _is(dq, _DQ):
                    return q, dq
    return None


@dataclasses.dataclass
class Pt2eTwin:
    """The calibrated float graph (observers pass values through) and the converted graph."""

    reference: Any
    converted: Any


def quantize_twin(module, calibration: np.ndarray, per_channel: bool = True,
                  keep_float: Sequence[str] = (), fold_relu: bool = False) -> Pt2eTwin:
    """PT2E int8 of ``module`` exactly as executorch-int8 makes it: a batch-1 export, then the
    converter's own PT2E function (``quantdebug.pt2e.pt2e_quantize``); modules whose class name
    is in ``keep_float`` left float, as the converter leaves its rewritten norm."""
    import torch

    from .pt2e import pt2e_quantize

    calibration = np.ascontiguousarray(calibration, dtype=np.float32)
    example = torch.from_numpy(calibration[:1])
    try:
        ep = torch.export.export(module.eval(), (example,))
    except Exception as exc:  # noqa: BLE001 - the exporter's reason, one line
        raise ConversionError(f"torch.export cannot capture the model: {type(exc).__name__}: {first_line(exc, 200)}") \
            from None
    done = pt2e_quantize(ep.module(), calibration, per_channel=per_channel, keep_float=keep_float,
                         keep_reference=True, fold_relu=fold_relu)
    return Pt2eTwin(reference=done.reference, converted=done.converted)


def _run_nodes(gm, x) -> dict:
    """Every node's value of graph module ``gm`` on ``x`` (name -> value)."""
    import torch
    import torch.fx

    values: dict = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            # a copy: a later in-place op (relu_) must not change what this node produced
            values[n.name] = out.clone() if isinstance(out, torch.Tensor) else out
            return out

    with torch.no_grad():
        Recorder(gm).run(x)
    return values


def _segment(out_node) -> list:
    """The compute nodes between ``out_node``'s input quantization boundaries and ``out_node``
    (network order)."""
    seen, order = set(), []

    def walk(n) -> None:
        if n.name in seen or n.op != "call_function" or _is(n, _DQ) or _is(n, _Q):
            return
        seen.add(n.name)
        for a in n.all_input_nodes:
            walk(a)
        order.append(n)

    walk(out_node)
    return order


def _shadow(out_node, q, dq, fvals: dict, qvals: dict):
    """``out_node``'s segment alone in int8: activations from the float graph through their own
    input quantizers, int8 weights as converted, the result through the output quantizer.
    None when an input has no float counterpart."""
    import torch
    import torch.fx

    memo: dict = {}

    def value(n):
        if n.name in memo:
            return memo[n.name]
        if n.op in ("get_attr", "placeholder"):
            v = qvals[n.name] if n.op == "get_attr" else fvals[n.name]
        elif _is(n, _DQ):
            src = n.args[0]
            if _is(src, _Q) and src.args[0].op not in ("get_attr",):
                act = src.args[0]
                if act.name not in fvals:
                    raise KeyError(act.name)
                qv = src.target(fvals[act.name], *src.args[1:], **src.kwargs)
                v = n.target(qv, *[value(a) if isinstance(a, torch.fx.Node) else a for a in n.args[1:]], **n.kwargs)
            else:
                v = qvals[n.name]  # a dequantized int8 weight: exactly what the converted graph holds
        elif n.op == "call_function":
            args = torch.fx.node.map_arg(n.args, value)
            kwargs = torch.fx.node.map_arg(n.kwargs, value)
            v = n.target(*args, **kwargs)
        else:
            raise KeyError(n.name)
        memo[n.name] = v
        return v

    try:
        with torch.no_grad():
            y = value(out_node)
            return dq.target(q.target(y, *q.args[1:], **q.kwargs), *dq.args[1:], **dq.kwargs)
    except KeyError:
        return None


def _num(v) -> Optional[float]:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _macs(seg: list, qvals: dict) -> int:
    """Multiply-accumulates per sample of the segment's convolutions / linears (batch-1 values)."""
    total = 0
    for n in seg:
        if _base(n) not in _MAC_OPS or len(n.args) < 2:
            continue
        w, out, inp = qvals.get(n.args[1].name) if hasattr(n.args[1], "name") else None, qvals.get(n.name), \
            qvals.get(n.args[0].name) if hasattr(n.args[0], "name") else None
        if w is None or out is None:
            continue
        transposed = _base(n) == "conv_transpose2d" or (_base(n) == "convolution" and len(n.args) > 6 and n.args[6])
        if transposed and inp is not None:
            total += int(inp[0].numel() * np.prod(w.shape[1:]))
        else:
            total += int(out[0].numel() * (np.prod(w.shape[1:]) if _base(n) != "linear" else w.shape[-1]))
    return total


def compare_twin(twin: Pt2eTwin, inputs: np.ndarray) -> tuple[list[OpNumerics], list[str], np.ndarray, np.ndarray]:
    """(rows in network order, requantized tensors with no float counterpart, float output,
    twin output) over ``inputs`` (run one at a time: the program is batch 1)."""
    import torch

    conv, ref = twin.converted.graph, twin.reference
    fruns, qruns, shadows = [], [], []
    targets = []
    for n in conv.nodes:
        if n.op != "call_function" or _is(n, _Q) or _is(n, _DQ) or _base(n) in _MOVEMENT:
            continue
        pair = _qdq_after(n)
        if pair is not None:
            targets.append((n, *pair))
    order = {n.name: i for i, n in enumerate(conv.nodes)}
    for i in range(len(inputs)):
        x = torch.from_numpy(np.ascontiguousarray(inputs[i: i + 1], dtype=np.float32))
        fv, qv = _run_nodes(ref, x), _run_nodes(twin.converted, x)
        fruns.append(fv)
        qruns.append(qv)
        shadows.append({n.name: _shadow(n, q, dq, fv, qv) for n, q, dq in targets})
    rows, unmatched = [], []

    def cat(runs, key):
        return np.concatenate([r[key].detach().numpy() for r in runs])

    for n, q, dq in targets:
        if n.name not in fruns[0] or tuple(fruns[0][n.name].shape) != tuple(qruns[0][dq.name].shape):
            unmatched.append(n.name)
            continue
        f, got = cat(fruns, n.name), cat(qruns, dq.name)
        sh = None if shadows[0][n.name] is None else np.concatenate([s[n.name].detach().numpy() for s in shadows])
        seg = _segment(n)
        anchor = next((s for s in seg if _base(s) in _MAC_OPS), n)
        scale, zp = _num(q.args[1]) if len(q.args) > 1 else None, q.args[2] if len(q.args) > 2 else None
        zp = int(zp) if _num(zp) is not None else None
        clipped = 0.0
        if scale is not None and len(q.args) > 4 and zp is not None:
            lo, hi = (float(q.args[3]) - zp) * scale, (float(q.args[4]) - zp) * scale
            clipped = float(np.mean((f < lo - scale / 2) | (f > hi + scale / 2)))
        wscales = [qruns[0][d.args[1].name] for s in seg for d in s.all_input_nodes
                   if _is(d, _DQ) and _base(d) == "dequantize_per_channel" and hasattr(d.args[1], "name")
                   and d.args[1].name in qruns[0]]
        rows.append(OpNumerics(
            name=anchor.name if anchor is not n else n.name, op_type="+".join(_base(s) for s in seg) or _base(n),
            tensor=n.name, order=order[n.name], sqnr_db=sqnr_db(f, got), psnr_db=psnr_db(f, got),
            introduced_sqnr_db=None if sh is None else sqnr_db(f, sh),
            float_min=float(f.min()), float_max=float(f.max()), float_std=float(f.std()),
            quant_min=float(got.min()), quant_max=float(got.max()),
            max_abs_err=float(np.max(np.abs(f.astype(np.float64) - got))), scale=scale, zero_point=zp,
            weight_scale_min=float(wscales[0].min()) if wscales else None,
            weight_scale_max=float(wscales[0].max()) if wscales else None,
            clipped_fraction=clipped, macs=_macs(seg, qruns[0])))
    out_node = next(n for n in conv.nodes if n.op == "output")
    out_name = out_node.args[0][0].name if isinstance(out_node.args[0], (tuple, list)) else out_node.args[0].name
    ref_out = next(n for n in ref.graph.nodes if n.op == "output")
    ref_name = ref_out.args[0][0].name if isinstance(ref_out.args[0], (tuple, list)) else ref_out.args[0].name
    return rows, unmatched, cat(fruns, ref_name), cat(qruns, out_name)


def run_pte(pte: Path, inputs: np.ndarray) -> np.ndarray:
    """The .pte's outputs on ``inputs``, one at a time (executorch.runtime, this host)."""
    import torch
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(pte)).load_method("forward")
    outs = [method.execute([torch.from_numpy(np.ascontiguousarray(inputs[i: i + 1], dtype=np.float32))])[0]
            for i in range(len(inputs))]
    return np.concatenate([o.detach().numpy() for o in outs])


def debug_twin(twin: Pt2eTwin, inputs: np.ndarray, *, fmt: str = "executorch-int8", pte: Optional[Path] = None,
               float_model: str = "torch model", notes: Sequence[str] = (),
               output_peak: Optional[float] = None) -> DebugReport:
    """The per-op table of ``twin``; with ``pte`` the output figures are the .pte's and its gap
    to the twin is a note."""
    rows, unmatched, fout, qout = compare_twin(twin, inputs)
    if not rows:
        raise ConversionError("the PT2E graph has no requantized op output to compare; is the model quantized at all?")
    notes = [*notes, "per-op rows come from the .pte's PT2E quantization replayed in torch (the XNNPACK delegate "
             "does not expose its intermediates: ETDump logs one output per delegate call)"]
    out = qout
    if pte is not None:
        out = run_pte(pte, inputs)
        notes.append(f"the .pte vs its torch twin: {sqnr_db(qout, out):.1f} dB SQNR (max abs diff "
                     f"{float(np.max(np.abs(qout - out))):.2e}); twin vs float {psnr_db(fout, qout, output_peak):.1f} dB PSNR")
    return DebugReport(format=fmt, backend=BACKEND, float_model=float_model,
                       quant_model=str(pte) if pte else "PT2E converted torch graph", inputs=int(len(inputs)),
                       output_sqnr_db=sqnr_db(fout, out), output_psnr_db=psnr_db(fout, out, output_peak), ops=rows,
                       unmatched=unmatched, notes=notes)


def rebuild_module(bundle):
    """The bundle's float torch module, rebuilt from its recorded export config; its weights
    must hash to bundle.json's ``weights_sha256``."""
    from ..models.loading import load_generator
    from ..models.spec import InputSpec
    from ..models.stats import weights_sha256

    cfg = bundle.manifest.export_config or {}
    if not cfg.get("model"):
        raise ConfigError("the bundle records no export_config to rebuild its model from; re-export it with this "
                          "edgegan or pass the module (debug_executorch_bundle(..., module=...))")
    spec = None
    if cfg.get("input_shape"):
        kind = cfg.get("input_kind") or "latent"
        spec = InputSpec(shape=[int(d) for d in cfg["input_shape"]], kind=kind,
                         distribution="normal" if kind == "latent" else "uniform")
    model = load_generator(cfg["model"], cfg.get("checkpoint"), cfg.get("model_config") or None, spec)
    want = bundle.manifest.model.weights_sha256
    if want and weights_sha256(model.module) != want:
        raise ConfigError("the model rebuilt from the bundle's export_config has other weights than the bundle's "
                          "(checkpoint changed or compressed in memory); pass the module itself "
                          "(debug_executorch_bundle(..., module=...))")
    return model.module


def _rewrite_options(rewrites: list) -> tuple[bool, dict]:
    """(equalized, the other delegation_rewrite switches) as the converter recorded them next to
    each rewrite (booleans only, whatever the file holds); bundles written before that was
    recorded: read from the rewrites' names."""
    recorded = next((r["options"] for r in rewrites if isinstance(r, dict) and isinstance(r.get("options"), dict)), None)
    if recorded is not None:
        return recorded.get("equalize") is True, {k: True for k in ("deconvs", "crop", "latent", "nhwc") if recorded.get(k) is True}
    names = [str(r.get("rewrite", "")) for r in rewrites if isinstance(r, dict)]
    options = {"deconvs": True} if any("sub-pixel" in n for n in names) else {}
    if any("sub-pixel" in n and "crop" in n for n in names):
        options["crop"] = True
    if any("1x1 input -> linear" in n for n in names):
        options["latent"] = True
    return any("equalized" in n for n in names), options


def debug_executorch_bundle(bundle_dir: str | Path, fmt: str = "executorch-int8", n_inputs: int = 8,
                            module=None, rewrite: Optional[Callable] = None) -> DebugReport:
    """Per-op numerics of the bundle's executorch-int8 .pte (see the module docstring for what is
    measured). ``module``: the float torch model, when it cannot be rebuilt from the bundle.
    ``rewrite(module, inputs, equalize=None[, deconvs=True, crop=True, latent=True]) -> (module, keep_float)``:
    the converter's delegation rewrite (``equalize``: the calibration inputs, when the artifact
    records the norm-input equalization; ``deconvs`` when it records the sub-pixel
    ConvTranspose rewrite, ``crop`` when that rewrite crops, ``latent`` when a transposed conv
    on a 1x1 input became a linear layer) and the class names it keeps float,
    needed when the artifact records one (the converters package provides it; passed in so this
    package does not import the converters, which import it)."""
    from ..bundle import Bundle
    from .bundle import calibration_inputs, stored_inputs

    if fmt != "executorch-int8":
        raise ConfigError(f"the ExecuTorch debugger handles executorch-int8, not '{fmt}' (an fp32 .pte has no "
                          "quantization to debug)", field="format")
    if n_inputs < 1:
        raise ConfigError("--inputs must be at least 1", field="inputs")
    bundle = Bundle.load(bundle_dir)
    rec = bundle.artifact(fmt)
    pte = bundle.artifact_path(rec)
    if module is None:
        module = rebuild_module(bundle)
    q = rec.quantization or {}
    cal = calibration_inputs(bundle)
    keep: Sequence[str] = ()
    if rec.rewrites:
        if rewrite is None:
            raise ConfigError(f"{fmt} was lowered from a rewritten model ({len(rec.rewrites)} rewrite(s)); pass "
                              "rewrite= (edgegan debug-quant does)")
        equalized, options = _rewrite_options(rec.rewrites)
        module, keep = rewrite(module, cal[:8], equalize=cal if equalized else None, **options)
    twin = quantize_twin(module, cal, per_channel=bool(q.get("per_channel", True)), keep_float=keep,
                         fold_relu="relus_folded_into_quantize" in q)
    notes = [f"replayed with the artifact's rewrites: {', '.join(r.get('rewrite', '?') for r in rec.rewrites)}"] \
        if rec.rewrites else []
    return debug_twin(twin, stored_inputs(bundle, n_inputs), fmt=fmt, pte=pte,
                      float_model=f"{bundle.manifest.model.name} (torch, rebuilt, weights hash checked)", notes=notes,
                      output_peak=bundle.manifest.output_range().peak)
