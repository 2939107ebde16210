"""Subprocess entry for the TFLite side (TensorFlow never loads into the process that holds
torch): TF's QuantizationDebugger on an onnx2tf saved_model, and selective int8.

    python -m edgegan.quantdebug.tflite_worker JOB.json

JOB: saved_model, calibration and eval (.npy, the float model's NCHW layout; laid out here as
the converted model's real input, read off its shape), input_shape / output_shape (the float
model's batch-1 NCHW shapes; output_shape may be null), per_channel, keep_ops (TFLite op
names), keep_nodes (output tensor names), auto, target_psnr_db, max_steps, out (.tflite or
null), report (.json). The debugger feeds each float op the DEQUANTIZED inputs of the int8
model (NumericVerify), so its per-layer error is the error the op introduces; the total error
per tensor comes from the float and int8 models run with every tensor preserved, matched by
tensor name. ``auto`` denylists the worst-introducing op's output, re-quantizes (no
re-calibration) and re-measures, undoing steps that do not gain, until the output PSNR vs the
fp32 model meets the target.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

PEAK = 2.0  # as edgegan.verify.host.PEAK (this file runs without the package's heavy imports)
MIN_GAIN_DB = 0.05  # an auto step that gains less is undone
RADII = (0, 2, 4)  # auto: the worst op alone, then with its neighbours this many hops away
MAC_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"}


def _neighbourhood(content: bytes, tensor_name: str, radius: int) -> list[str]:
    """Output tensor names of the ops within ``radius`` hops of the op writing ``tensor_name``
    (through the tensors they share), not crossing MAC ops."""
    interp = _interpreter(content, delegates=False)
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # noqa: SLF001 - LiteRT's only op listing
    by_tensor: dict[int, list[int]] = {}
    for k, op in enumerate(ops):
        for t in [*op["inputs"], *op["outputs"]]:
            if t >= 0:
                by_tensor.setdefault(t, []).append(k)
    start = [k for k, op in enumerate(ops) if any(names.get(t) == tensor_name for t in op["outputs"])]
    seen, frontier = set(start), list(start)
    for _ in range(radius):
        nxt = []
        for k in frontier:
            for t in [*ops[k]["inputs"], *ops[k]["outputs"]]:
                for j in by_tensor.get(t, []):
                    if j not in seen and ops[j]["op_name"] not in MAC_OPS:
                        seen.add(j)
                        nxt.append(j)
        frontier = nxt
    return [names[t] for k in sorted(seen) for t in ops[k]["outputs"] if t in names]


def _sqnr(ref: np.ndarray, test: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64)
    noise = float(np.mean((ref - np.asarray(test, np.float64)) ** 2))
    signal = float(np.mean(ref ** 2))
    if noise == 0.0:
        return 200.0
    if signal == 0.0:
        return -200.0
    return float(min(200.0, max(-200.0, 10 * math.log10(signal / noise))))


def _interpreter(content: bytes, preserve: bool = False, delegates: bool = True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_content=content, num_threads=2, experimental_preserve_all_tensors=preserve,
                         experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    return interp


def _run(content: bytes, x: np.ndarray, preserve: bool = False):
    """Outputs for each input, plus (with ``preserve``) every float-valued tensor by name."""
    interp = _interpreter(content, preserve)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    outs, tensors = [], {}
    details = interp.get_tensor_details() if preserve else []
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i: i + 1].astype(inp["dtype"]))
        interp.invoke()
        outs.append(interp.get_tensor(out["index"]).astype(np.float32))
        for d in details:
            try:
                v = interp.get_tensor(d["index"])
            except ValueError:
                continue
            scale, zp = (d["quantization"] or (0.0, 0))
            if v.dtype in (np.int8, np.uint8, np.int16, np.int32) and scale:
                v = (v.astype(np.float32) - zp) * scale
            elif v.dtype != np.float32:
                continue
            tensors.setdefault(d["name"], []).append(np.array(v, np.float32))
    return np.concatenate(outs), {k: np.stack(v) for k, v in tensors.items() if len(v) == len(x)}


def _psnr(ref: np.ndarray, got: np.ndarray, peak: float = PEAK) -> float:
    mse = float(np.mean((ref.astype(np.float64) - got) ** 2))
    return 200.0 if mse == 0 else 10 * math.log10(peak * peak / mse)


def _range_psnr(ref: np.ndarray, got: np.ndarray) -> float:
    peak = float(ref.max() - ref.min())
    mse = float(np.mean((ref.astype(np.float64) - got) ** 2))
    return 200.0 if mse == 0 else -200.0 if peak == 0 else min(200.0, 10 * math.log10(peak * peak / mse))


def _converter(job):
    import tensorflow as tf

    calib = job["calibration_array"]

    def representative():
        for i in range(len(calib)):
            yield [calib[i: i + 1]]

    conv = tf.lite.TFLiteConverter.from_saved_model(job["saved_model"])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    conv._experimental_disable_per_channel = not job.get("per_channel", True)  # noqa: SLF001
    return conv


def layout_of(nchw: list, actual: list, what: str) -> str:
    """"NCHW", "NHWC" or "as-is" (not 4-D): the rule of edgegan.converters.tflite_common.layout_of
    (real shape, never the rank; NHWC when both fit), restated here because quantdebug must not
    import the converters package (which imports it)."""
    if len(nchw) != 4:
        return "as-is"
    if list(actual) == [nchw[0], nchw[2], nchw[3], nchw[1]]:
        return "NHWC"
    if list(actual) == list(nchw):
        return "NCHW"
    raise ValueError(f"the TFLite {what} has shape {list(actual)}, which is neither the float model's {list(nchw)} "
                     "nor its NHWC form")


def model_io(content: bytes, job: dict) -> dict:
    """The float TFLite model's I/O layout against the float model's NCHW shapes, decided from
    its real tensor shapes as at conversion (edgegan.converters.tflite_common.io_layout)."""
    interp = _interpreter(content, delegates=False)
    tin = [int(d) for d in interp.get_input_details()[0]["shape"]]
    tout = [int(d) for d in interp.get_output_details()[0]["shape"]]
    io = {"input_layout": layout_of(job["input_shape"], tin, "input")}
    if job.get("output_shape"):
        io["output_layout"] = layout_of(job["output_shape"], tout, "output")
    return io


def in_model_layout(x: np.ndarray, io: dict) -> np.ndarray:
    """NCHW inputs as the model takes them."""
    if io["input_layout"] == "NHWC":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return np.ascontiguousarray(x)


def _introduced(f, q, scale, zp) -> float:
    return _sqnr(f, (np.asarray(q, np.float32) - zp) * scale)


def _layers(dbg) -> list[dict]:
    import io
    import csv

    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    buf.seek(0)
    return [dict(r) for r in csv.DictReader(buf)]


def mac_summary(content: bytes) -> dict:
    """int8 share of the MACs and the ops that compute in float, read from the model itself."""
    import collections

    interp = _interpreter(content, delegates=False)  # the model's own ops, not the XNNPACK partitions
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    total = int8 = 0
    left_float = collections.Counter()
    for op in interp._get_ops_details():  # noqa: SLF001 - LiteRT's only op listing
        name, ins, outs = op["op_name"], [i for i in op["inputs"] if i >= 0], op["outputs"]
        dtypes = {tensors[i]["dtype"] for i in ins if i in tensors}
        is_float = np.float32 in dtypes
        if is_float and name not in ("QUANTIZE", "DEQUANTIZE"):
            left_float[name] += 1
        shape = lambda i: [int(d) for d in tensors[i]["shape"]]  # noqa: E731
        macs = 0
        if name == "CONV_2D" and len(ins) > 1:
            macs = int(np.prod(shape(outs[0])[1:]) * np.prod(shape(ins[1])[1:]))
        elif name == "DEPTHWISE_CONV_2D" and len(ins) > 1:
            macs = int(np.prod(shape(outs[0])[1:]) * np.prod(shape(ins[1])[1:3]))
        elif name == "TRANSPOSE_CONV" and len(ins) > 2:
            w = shape(ins[1])
            macs = int(np.prod(shape(ins[2])[1:]) * w[0] * w[1] * w[2])
        elif name == "FULLY_CONNECTED" and len(ins) > 1:
            macs = int(np.prod(shape(outs[0])[1:]) * shape(ins[1])[-1])
        total += macs
        int8 += 0 if is_float else macs
    return {"int8_mac_fraction": round(int8 / total, 4) if total else 0.0, "total_macs": total,
            "ops_left_float": [f"{k} x{v}" for k, v in left_float.most_common()]}


def _layer_table(tf, dbg, dataset) -> list[dict]:
    """Per-layer introduced error of the current int8 model; [] when no op is quantized any more.
    The converter-built debugger does not preserve tensors, so its direct comparison would read
    freed buffers: measure on the same debug model through a tensor-preserving debugger."""
    try:
        probe = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=dbg.get_debug_quantized_model(), debug_dataset=dataset,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                layer_direct_compare_metrics={"introduced_sqnr_db": _introduced}))
    except ValueError as exc:  # "check if the quantized model is in debug mode": nothing left to verify
        if "debug mode" not in str(exc):
            raise
        return []
    probe.run()
    return _layers(probe)


def main() -> int:
    import tensorflow as tf

    job = json.loads(Path(sys.argv[1]).read_text())
    evals = np.load(job["eval"], allow_pickle=False).astype(np.float32)

    def dataset():
        for i in range(len(evals)):
            yield [evals[i: i + 1]]

    float_model = tf.lite.TFLiteConverter.from_saved_model(job["saved_model"]).convert()
    io = model_io(float_model, job)
    evals = in_model_layout(evals, io)
    job = {**job, "calibration_array": in_model_layout(
        np.load(job["calibration"], allow_pickle=False).astype(np.float32), io)}
    ref_out, ref_tensors = _run(float_model, evals, preserve=True)
    keep_nodes = list(job.get("keep_nodes", []))

    def options(nodes):
        return tf.lite.experimental.QuantizationDebugOptions(
            layer_direct_compare_metrics={"introduced_sqnr_db": _introduced},
            denylisted_ops=list(job.get("keep_ops", [])) or None, denylisted_nodes=list(nodes) or None)

    def requantize(nodes) -> None:
        try:
            dbg.options = options(nodes)  # re-quantizes the calibrated model with this denylist
        except ValueError as exc:  # every op denylisted: nothing left for NumericVerify, still valid
            if "debug mode" not in str(exc):
                raise

    dbg = tf.lite.experimental.QuantizationDebugger(converter=_converter(job), debug_dataset=dataset,
                                                    debug_options=options(keep_nodes))
    model = dbg.get_nondebug_quantized_model()
    out, tensors = _run(model, evals, preserve=True)
    peak = float(job.get("output_peak", PEAK))  # the model's output range hi - lo
    psnr = _psnr(ref_out, out, peak)
    layers = _layer_table(tf, dbg, dataset)
    steps, tried, auto_kept = 0, set(), []
    # one region per step, re-measured; a step that does not raise the output PSNR is undone.
    # A float op between int8 ops is requantized on both sides, so one op alone rarely gains:
    # the worst op is tried alone, then with its neighbours up to RADII hops away (never across
    # a conv / fully-connected op, which should stay int8)
    while job.get("auto") and psnr < job["target_psnr_db"] and steps < job.get("max_steps", 16):
        candidates = [r for r in layers if r["tensor_name"] not in tried and r["tensor_name"] not in keep_nodes]
        if not candidates:
            break
        worst = min(candidates, key=lambda r: float(r["introduced_sqnr_db"]))
        tried.add(worst["tensor_name"])
        quantized = {r["tensor_name"] for r in layers}
        for radius in RADII:
            if steps >= job.get("max_steps", 16):
                break
            steps += 1
            region = [n for n in _neighbourhood(model, worst["tensor_name"], radius)
                      if n in quantized and n not in keep_nodes]
            requantize([*keep_nodes, *region])
            trial = dbg.get_nondebug_quantized_model()
            t_out, t_tensors = _run(trial, evals, preserve=True)
            t_psnr = _psnr(ref_out, t_out, peak)
            if t_psnr <= psnr + MIN_GAIN_DB:
                requantize(keep_nodes)
                continue
            ops_of = {r["tensor_name"]: r["op_name"] for r in layers}
            for name in region:
                keep_nodes.append(name)
                auto_kept.append({"name": name, "op_type": ops_of.get(name),
                                  "why": f"auto: around {worst['tensor_name']} (introduced "
                                         f"{float(worst['introduced_sqnr_db']):.1f} dB), output +{t_psnr - psnr:.2f} dB"})
            model, out, tensors, psnr = trial, t_out, t_tensors, t_psnr
            layers = _layer_table(tf, dbg, dataset)
            break
    rows = []
    for order, r in enumerate(layers):
        name = r["tensor_name"]
        ref, got = ref_tensors.get(name), tensors.get(name)
        matched = ref is not None and got is not None and ref.shape == got.shape
        rows.append({
            "name": name, "op_type": r["op_name"], "order": order,
            "introduced_sqnr_db": float(r["introduced_sqnr_db"]),
            "sqnr_db": _sqnr(ref, got) if matched else None,
            "psnr_db": _range_psnr(ref, got) if matched else None,
            "float_min": float(ref.min()) if matched else 0.0, "float_max": float(ref.max()) if matched else 0.0,
            "float_std": float(ref.std()) if matched else 0.0,
            "quant_min": float(got.min()) if matched else 0.0, "quant_max": float(got.max()) if matched else 0.0,
            "max_abs_err": float(np.max(np.abs(ref - got))) if matched else 0.0,
            "scale": float(r["scale"]), "zero_point": int(float(r["zero_point"])),
            "psnr_from_mse": float(r["mean_squared_error"]),
        })
    if job.get("out"):
        Path(job["out"]).write_bytes(model)
    report = {**mac_summary(model), "io": io, "rows": rows, "output_psnr_db": psnr, "output_sqnr_db": _sqnr(ref_out, out), "steps": steps,
              "kept_float": ([{"name": n, "op_type": None, "why": "named"} for n in job.get("keep_nodes", [])]
                             + [{"name": o, "op_type": o, "why": f"op type {o}"} for o in job.get("keep_ops", [])]
                             + auto_kept)}
    Path(job["report"]).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - one line for the parent
        print(f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}", file=sys.stderr)
        sys.exit(1)
