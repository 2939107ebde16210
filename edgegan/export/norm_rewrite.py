"""ONNX-level rewrites that make an InstanceNorm generator quantize well, each checked against
the unrewritten graph on a real ONNX Runtime session.

Why: an int8 runtime quantizes the conv output that feeds an InstanceNorm with ONE per-tensor
scale, but the norm divides every channel by its own standard deviation. A channel whose values
span 1/20 of the tensor's range gets its quantization noise multiplied by ~20 (the debugger ranks
these InstanceNorms worst on resnet-sketch). Two exact facts fix the range:

- ``instance_norm_bias``: InstanceNorm subtracts each channel's mean, so the producing conv's
  bias does not change the norm's output; it only shifts the channel and widens the tensor's
  range. Dropping it is float-exact.
- ``instance_norm_equalize``: IN(k·x) = IN(x) for k > 0 up to epsilon (eps becomes eps/k²),
  so the producing conv's output channel c is scaled by k_c = max_range / range_c (k_c >= 1,
  ranges from calibration inputs): every channel then uses the whole int8 range.

The eps term makes equalizing not float-exact: a channel whose variance is within a few eps of
zero is divided by sqrt(var + eps/k²) instead of sqrt(var + eps). On resnet-sketch that moves
the output by 6.4e-3 max (83 dB PSNR); with eps set to ~0 in both graphs the same rewrite
differs by 2.9e-6 (rounding). So the check is a budget, not an exactness test: the rewrite is
accepted when its change is far below what int8 costs (:data:`MIN_PSNR_DB`, stated next to it)
and no output element moves by more than :data:`MAX_ERR_OF_RANGE` of the output range.

For the last layer, ORT has no int8 Tanh: it runs between DequantizeLinear / QuantizeLinear,
and :func:`tanh_input_range` (ort-int8's option ``tanh_range``) narrows the calibrated range of
its input to where the Tanh is not saturated.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import ConversionError
from .graph_index import GraphIndex

_PRODUCERS = ("Conv", "ConvTranspose")

# Acceptance of a rewrite vs the unrewritten float graph, both run in ORT on the calibration
# inputs. 60 dB: the int8 artifacts this rewrite serves are 35-50 dB vs float, so a change 60 dB
# down adds at most 1/10 of a 50 dB model's error power (<= 0.4 dB) and ~0.04 dB at 40 dB; a
# wrong rewrite (a channel's sign flipped, a bias dropped where no norm follows: see
# tests/test_norm_rewrite.py) lands far below it.
MIN_PSNR_DB = 60.0
# and no single value moves by more than 1 % of the output's range (2.5 steps of an 8-bit
# output), so a local fault the mean hides is still caught
MAX_ERR_OF_RANGE = 0.01


@dataclasses.dataclass
class NormRewriteReport:
    """What :func:`equalize_instance_norms` did, recorded on the artifact."""

    rewrites: list
    norms: int
    max_abs_err: float
    psnr_db: float
    max_gain: float
    atol: float  # the max-abs bound the check applied: MAX_ERR_OF_RANGE x the output's range
    min_psnr_db: float = MIN_PSNR_DB

    def records(self) -> list[dict]:
        return [{"rewrite": r, "instance_norms": self.norms, "max_abs_err_vs_original": self.max_abs_err,
                 "psnr_db_vs_original": self.psnr_db, "tolerance_abs": self.atol,
                 "min_psnr_db_vs_original": self.min_psnr_db,
                 "max_channel_gain": self.max_gain, "checked_with": "onnxruntime, calibration inputs"}
                for r in self.rewrites]


NORM_REWRITES = ("instance_norm_bias", "instance_norm_equalize")


# ops that only move values between positions/channels: a conv reaching an InstanceNorm only
# through them (the sub-pixel up-sampling's slices + interleave, edgegan.export.rewrite) still has
# its bias removed and its scale undone by the norm, per norm channel
_MOVES = ("Slice", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Transpose", "DepthToSpace")


def _channel_major(node) -> bool:
    """A DepthToSpace in CRD mode (torch's pixel_shuffle) takes conv channels c·b² .. c·b²+b²-1 to
    output channel c; the phase-block layout (DCR, or slices + interleave) takes channel j to j % C."""
    mode = next((a.s for a in node.attribute if a.name == "mode"), b"DCR")
    return node.op_type == "DepthToSpace" and mode == b"CRD"


def _through_moves(name: str, producer: dict, consumers: dict, inits: set):
    """(the one Conv/ConvTranspose whose output reaches tensor ``name`` through data-movement
    ops only, the tensors on that path) or None. Every path must end at that same conv and no
    tensor on it may be read by anything else."""
    convs, path, todo = set(), [], [name]
    while todo:
        t = todo.pop()
        node = producer.get(t)
        if node is None:
            return None
        path.append(t)
        if node.op_type in _PRODUCERS:
            convs.add(node.name or node.output[0])
            conv = node
            continue
        if node.op_type not in _MOVES:
            return None
        todo += [i for i in node.input[:1 if node.op_type != "Concat" else None] if i and i not in inits]
    if len(convs) != 1:
        return None
    return conv, path


def _norm_producers(model) -> list[tuple]:
    """(conv node, norm node, channel-major) triples where the conv's output reaches only that
    InstanceNorm (directly, or through data-movement ops only, e.g. the sub-pixel interleave) and
    its weight (and bias) are initializers; channel-major: a CRD DepthToSpace on the way maps a
    conv with m × the norm's channels by j -> j // m (else j -> j % C)."""
    index = GraphIndex.of(model.graph)
    inits, consumers, graph_outputs, producer = set(index.initializers), index.consumers, index.outputs, index.producer
    pairs = []
    for n in model.graph.node:
        if n.op_type != "InstanceNormalization":
            continue
        found = _through_moves(n.input[0], producer, consumers, inits)
        if found is None:
            continue
        conv, path = found
        if conv.input[1] not in inits:
            continue
        if len(conv.input) > 2 and conv.input[2] and conv.input[2] not in inits:
            continue
        inside = {producer[t].name or producer[t].output[0] for t in path} | {n.name or n.output[0]}
        if any(t in graph_outputs or any((c.name or c.output[0]) not in inside for c in consumers.get(t, []))
               for t in path):
            continue
        if any(a.name == "group" and a.i != 1 for a in conv.attribute) and conv.op_type == "ConvTranspose":
            continue
        pairs.append((conv, n, any(_channel_major(producer[t]) for t in path)))
    return pairs


def _session(model_bytes: bytes, threads: int = 2):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def _run(sess, x: np.ndarray, names=None) -> list[np.ndarray]:
    name = sess.get_inputs()[0].name
    outs = [sess.run(names, {name: x[i:i + 1].astype(np.float32)}) for i in range(len(x))]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def equalize_instance_norms(src: Path, dst: Path, calibration: np.ndarray, *, drop_bias: bool = True,
                            equalize: bool = True, max_gain: float = 64.0, min_psnr_db: float = MIN_PSNR_DB,
                            max_err_of_range: float = MAX_ERR_OF_RANGE) -> NormRewriteReport:
    """Write ``src`` with the convs feeding InstanceNorms rewritten (bias dropped, output channels
    equalized) to ``dst``; check it against ``src`` on ``calibration`` with ORT (:func:`check_rewrite`,
    ConversionError when it fails). Dropping the bias is exact to float rounding; equalizing
    moves only channels whose variance is within a few eps of zero (see the module docstring).
    Raises ValueError when the graph has no such pair."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    pairs = _norm_producers(model)
    if not pairs or not (drop_bias or equalize):
        raise ValueError("no Conv -> InstanceNormalization pair to rewrite")
    inits = {i.name: i for i in model.graph.initializer}
    use_count: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            use_count[i] = use_count.get(i, 0) + 1

    def own_initializer(node, idx: int) -> np.ndarray:
        """The initializer at node.input[idx] as an array, duplicated first when shared."""
        name = node.input[idx]
        if use_count.get(name, 0) > 1:
            new = f"{name}__eq_{node.output[0]}"
            model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(inits[name]), new))
            inits[new] = model.graph.initializer[-1]
            use_count[name] -= 1
            use_count[new] = 1
            node.input[idx] = name = new
        return numpy_helper.to_array(inits[name]).copy()

    def store(name: str, arr: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(arr.astype(numpy_helper.to_array(inits[name]).dtype), name))

    gains = [1.0]
    if equalize:  # per-channel range of each conv output, bias excluded, on the calibration inputs
        probe = onnx.load(str(src))
        del probe.graph.output[:]
        names = list(dict.fromkeys(t for conv, norm, _ in pairs for t in (conv.output[0], norm.input[0])))
        probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in names)
        by_name = dict(zip(names, _run(_session(probe.SerializeToString()), calibration)))
        acts = [by_name[conv.output[0]] for conv, _, _ in pairs]
        norm_channels = [by_name[norm.input[0]].shape[1] for _, norm, _ in pairs]
    for i, (conv, _, major) in enumerate(pairs):
        has_bias = len(conv.input) > 2 and bool(conv.input[2])
        bias = own_initializer(conv, 2) if has_bias else None
        if equalize:
            a = acts[i]
            if bias is not None:
                a = a - bias.reshape(1, -1, *([1] * (a.ndim - 2)))
            rng = np.abs(a).max(axis=tuple(d for d in range(a.ndim) if d != 1))
            # a conv with m x the norm's channels (sub-pixel phases): conv channel j is norm channel
            # j // m after a CRD DepthToSpace, j % C after phase blocks; the phases of one norm
            # channel share one gain
            groups = len(rng) // norm_channels[i] if len(rng) % norm_channels[i] == 0 else 1
            rng = rng.reshape(-1, groups).max(axis=1) if major else rng.reshape(groups, -1).max(axis=0)
            k = np.clip(rng.max() / np.maximum(rng, 1e-12), 1.0, max_gain).astype(np.float32)
            k = np.repeat(k, groups) if major else np.tile(k, groups)
            w = own_initializer(conv, 1)
            axis = 0 if conv.op_type == "Conv" else 1
            w = w * k.reshape([-1 if d == axis else 1 for d in range(w.ndim)])
            store(conv.input[1], w)
            if bias is not None and not drop_bias:
                store(conv.input[2], bias * k)
            gains.append(float(k.max()))
        if has_bias and drop_bias and _same_per_norm_channel(bias, norm_channels[i] if equalize else None, major):
            store(conv.input[2], np.zeros_like(bias))
    rewrites = (["instance_norm_bias"] if drop_bias else []) + (["instance_norm_equalize"] if equalize else [])
    onnx.save(model, str(dst))
    err, psnr, atol = check_rewrite(src, dst, calibration, min_psnr_db, max_err_of_range)
    return NormRewriteReport(rewrites, len(pairs), err, psnr, round(max(gains), 3), atol, min_psnr_db)


def _same_per_norm_channel(bias: np.ndarray, channels, major: bool = False) -> bool:
    """Whether a conv bias is one constant per norm channel (always for a direct conv -> norm; for
    sub-pixel phases only when every phase block carries the same bias, as the rewrite makes it)."""
    if channels is None or len(bias) == channels or len(bias) % channels:
        return True
    if major:
        per = bias.reshape(channels, -1)
        return bool((per == per[:, :1]).all())
    return bool((bias.reshape(-1, channels) == bias[:channels]).all())


def check_rewrite(original: Path, rewritten: Path, x: np.ndarray, min_psnr_db: float = MIN_PSNR_DB,
                  max_err_of_range: float = MAX_ERR_OF_RANGE) -> tuple[float, float, float]:
    """(max abs error, PSNR dB, the max-abs bound applied) of ``rewritten`` against ``original``
    on ``x``, both run in ONNX Runtime, with the original's observed output range as the peak;
    ConversionError when the PSNR is below ``min_psnr_db`` or an element moved by more than
    ``max_err_of_range`` of that range."""
    ref = _run(_session(Path(original).read_bytes()), x)[0]
    got = _run(_session(Path(rewritten).read_bytes()), x)[0]
    err = float(np.abs(ref - got).max())
    mse = float(np.mean((ref.astype(np.float64) - got) ** 2))
    peak = float(ref.max() - ref.min()) or 1.0
    psnr = round(10 * np.log10(peak ** 2 / mse), 2) if mse > 0 else float("inf")
    atol = max_err_of_range * peak
    if not (psnr >= min_psnr_db and err <= atol):
        raise ConversionError(f"InstanceNorm rewrite changed the float output too much: {psnr:.1f} dB PSNR "
                              f"(needs >= {min_psnr_db:g}), max abs {err:.2e} (needs <= {atol:.2e} = "
                              f"{max_err_of_range:g} of the output range); turn it off with the format's "
                              f"norm_rewrite option")
    return err, psnr, atol


def tanh_input_range(path: Path, output_levels: int = 256) -> list[dict]:
    """In a QDQ model, narrow the quantization range of each tensor that only feeds a Tanh to
    [-t, t], t = atanh(1 - 1/output_levels): inputs beyond it give a Tanh output within half an
    8-bit output step of +-1, so the range they take from the int8 grid was wasted. Changes the
    output by at most 1/output_levels per element. Rewrites ``path`` in place; returns what it did."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    index = GraphIndex.of(model.graph)
    inits, producer = index.initializers, index.producer
    t = float(np.arctanh(1.0 - 1.0 / output_levels))
    done = []
    for tanh in [n for n in model.graph.node if n.op_type == "Tanh"]:
        dq = producer.get(tanh.input[0])
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear" or len(q.input) < 3:
            continue
        if q.input[1] != dq.input[1] or q.input[2] != dq.input[2]:
            continue
        scale = float(numpy_helper.to_array(inits[q.input[1]]))
        zp_arr = numpy_helper.to_array(inits[q.input[2]])
        info = np.iinfo(zp_arr.dtype)
        lo, hi = (info.min - int(zp_arr)) * scale, (info.max - int(zp_arr)) * scale
        new_lo, new_hi = max(lo, -t), min(hi, t)
        if new_hi - new_lo >= (hi - lo) * 0.99:
            continue
        new_scale = (new_hi - new_lo) / (info.max - info.min)
        zp = int(np.clip(round(info.min - new_lo / new_scale), info.min, info.max))
        shared = sum(q.input[1] in n.input for n in model.graph.node)
        if shared > 2:  # the scale is shared with other tensors: leave it
            continue
        inits[q.input[1]].CopyFrom(numpy_helper.from_array(np.array(new_scale, dtype=np.float32), q.input[1]))
        inits[q.input[2]].CopyFrom(numpy_helper.from_array(np.array(zp, dtype=zp_arr.dtype), q.input[2]))
        done.append({"tensor": q.input[0], "range_before": [round(lo, 4), round(hi, 4)],
                     "range_after": [round(new_lo, 4), round(new_hi, 4)]})
    if done:
        onnx.save(model, str(path))
    return done
