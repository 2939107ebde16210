"""Size accounting for compressed generators: packed size vs float size vs int8 containers.

Fake-quantized weights are stored (and exported) as float32 values on a 2^k-level grid, so
the file on disk does not shrink by itself. What k-bit storage *would* take is the packed
size, counted here under stated rules; the real file size is measured on the exported
artifact. Records carry both and never one for the other.

Packed-size rules:
* a weight of a quantized layer takes k bits, every other float tensor 32 bits
  (BatchNorm running stats included, ``num_batches_tracked`` excluded);
* a quantized layer adds one float32 scale per tensor or per output channel, plus one 8-bit
  zero point each for the asymmetric scheme;
* a weight tensor with zeros is stored sparse when that is smaller: a 1-bit-per-weight
  occupancy bitmap plus the non-zero values (so pruning pays off above 1/bits sparsity);
* activation fake-quant adds one float32 scale and zero point per quantized input.
"""
from __future__ import annotations

from typing import Any

from .layers import output_channel_axis, weight_layers


def quantized_layer_info(records: list[dict]) -> dict[str, dict]:
    """layer name -> {bits, granularity, scheme} from the quant records (the last wins)."""
    info: dict[str, dict] = {}
    for record in records:
        if record.get("method") == "quant":
            for name, layer in record.get("stats", {}).get("layers", {}).items():
                info[name] = {"bits": layer["bits"], "granularity": layer["granularity"], "scheme": layer["scheme"]}
    return info


def _weight_bits(n: int, nnz: int, bits: int) -> int:
    dense = n * bits
    sparse = n + nnz * bits
    return min(dense, sparse)


def storage_stats(module: Any, records: list[dict]) -> dict[str, Any]:
    """Sizes and sparsity of ``module`` given the compression ``records`` applied to it."""
    quantized = quantized_layer_info(records)
    layers = weight_layers(module)
    weight_ids = {id(layer.weight): name for name, layer in layers.items()}
    float_bits = packed_bits = int8_bits = 0
    total_weights = nonzero_weights = 0
    seen: set[int] = set()
    for key, tensor in module.state_dict(keep_vars=True).items():
        if key.endswith("num_batches_tracked") or not tensor.is_floating_point() or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        n = tensor.numel()
        float_bits += 32 * n
        name = weight_ids.get(id(tensor))
        if name is None:
            packed_bits += 32 * n
            int8_bits += 32 * n
            continue
        nnz = int((tensor.detach() != 0).sum())
        total_weights += n
        nonzero_weights += nnz
        q = quantized.get(name)
        if q is None:
            packed_bits += _weight_bits(n, nnz, 32)
            int8_bits += 32 * n
            continue
        scales = tensor.shape[output_channel_axis(layers[name])] if q["granularity"] == "per-channel" else 1
        overhead = scales * (32 + (8 if q["scheme"] == "asymmetric" else 0))
        packed_bits += _weight_bits(n, nnz, q["bits"]) + overhead
        int8_bits += 8 * n + overhead
    for record in records:
        if record.get("method") == "quant":
            n_act = len(record.get("stats", {}).get("activations", {}) or {})
            packed_bits += 64 * n_act
            int8_bits += 64 * n_act
    return {
        "float_bytes": float_bits // 8,
        "packed_bytes": -(-packed_bits // 8),
        "int8_container_bytes": -(-int8_bits // 8),
        "weights": total_weights,
        "nonzero_weights": nonzero_weights,
        "weight_sparsity": round(1 - nonzero_weights / total_weights, 6) if total_weights else 0.0,
        "params": int(sum(p.numel() for p in module.parameters())),
    }
