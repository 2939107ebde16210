"""torch -> ONNX: the dynamo exporter at opset 18 first, the TorchScript-based exporter as a
fallback; one self-contained file (no external data, which onnx2tf cannot follow), the ONNX
checker, and validation against torch with onnxruntime.

The batch axis is dynamic when the model allows it (checked by running all stored inputs at
once); a model that cannot take a dynamic batch (e.g. StyleGAN2's modulated convolution, one
conv group per batch item) is exported with a static batch of 1 and validated one input at a
time, which is how every runtime runs it anyway. What the exporters print (the TorchScript
exporter dumps whole graphs to stdout) is captured, never shown."""
from __future__ import annotations

import dataclasses
import errno
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import ExportError, first_line

log = logging.getLogger(__name__)

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "output"
# max |onnx - torch| allowed on outputs in [-1, 1]; float reorderings stay far below it
VALIDATE_ATOL = 1e-4


@dataclasses.dataclass
class OnnxExportInfo:
    exporter: str
    opset: int
    seconds: float
    torch_version: str
    onnx_version: str
    fallback_reason: str | None = None
    max_abs_err_vs_torch: float | None = None
    batch: str = "dynamic"  # "dynamic" or "static-1" (see the module docstring)
    batch_reason: str | None = None  # why the dynamic batch was not used


def torch_outputs(module, inputs: np.ndarray, batch: int = 16) -> np.ndarray:
    """Run the float torch model on ``inputs`` in chunks."""
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            outs.append(module(torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch]))).numpy())
    return np.concatenate(outs).astype(np.float32)


def _export_dynamo(module, example, path: Path, dynamic: bool) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), dynamo=True, opset_version=OPSET, external_data=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},) if dynamic else None, optimize=True, verbose=False,
        )


def _export_legacy(module, example, path: Path, dynamic: bool) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic else None,
        )


def _check(path: Path, dynamic: bool) -> None:
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    names = [i.name for i in model.graph.input]
    if names != [INPUT_NAME] or len(model.graph.output) != 1:
        raise ExportError(f"exported graph has inputs {names} and {len(model.graph.output)} outputs; "
                          "edgegan expects one input and one output")
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    if dynamic and not dim.dim_param:
        raise ExportError(f"the exporter fixed the batch to {dim.dim_value} (an op of the model needs a fixed batch)")


def why(exc: BaseException, limit: int = 300) -> str:
    """The line that says why an exporter failed: the first line of the root cause of the
    exception chain (torch.onnx wraps the real reason in "Failed to export ... step 1/3")."""
    chain = [exc]
    while len(chain) < 20:
        nxt = chain[-1].__cause__ or chain[-1].__context__
        if nxt is None or nxt in chain:
            break
        chain.append(nxt)
    from ..util.text import one_line

    root = chain[-1]
    text = first_line(root, 10_000, default="").split("[Caused by")[0]  # legacy: the rest is a graph dump
    return one_line(f"{type(root).__name__}: {text}".rstrip(": "), limit)


def onnx_session(path: Path, threads: int = 1):
    """An ORT session with the same options the device runner uses."""
    import onnxruntime as ort

    from ..runner.edgegan_runner import onnxruntime_session_options

    return ort.InferenceSession(str(path), onnxruntime_session_options(ort, threads),
                                providers=["CPUExecutionProvider"])


ATTEMPTS = (("dynamo", True), ("legacy", True), ("dynamo", False), ("legacy", False))


def export_onnx(module, inputs: np.ndarray, path: Path, reference: np.ndarray | None = None,
                prefer: str = "dynamo") -> OnnxExportInfo:
    """Export ``module`` to ``path`` and validate it on ``inputs`` against torch.

    Tries a dynamic batch with the dynamo then the legacy exporter (``prefer`` first), then the
    same with a static batch of 1 (validated input by input). Raises ExportError with every
    attempt's reason when none works."""
    import onnx
    import torch

    from ..util.quiet import captured_output

    example = torch.from_numpy(np.ascontiguousarray(inputs[:1]))
    if reference is None:
        reference = torch_outputs(module, inputs)
    attempts = sorted(ATTEMPTS, key=lambda a: (not a[1], a[0] != prefer))
    errors: list[str] = []
    batch_errors: list[str] = []
    for exporter, dynamic in attempts:
        label = f"{exporter}{'' if dynamic else ' (batch 1)'}"
        t0 = time.perf_counter()
        try:
            with captured_output():
                (_export_dynamo if exporter == "dynamo" else _export_legacy)(module, example, path, dynamic)
            _check(path, dynamic)
            err = validate_onnx(path, inputs, reference) if dynamic else validate_onnx_per_sample(path, inputs, reference)
        except ExportError as exc:
            errors.append(f"{label}: {exc}")
            (batch_errors if dynamic else []).append(f"{exporter}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - exporters raise anything; we report and fall back
            nospace = _find_enospc(exc)
            if nospace is not None:
                from ..bundle import os_error_to_edgegan

                path.unlink(missing_ok=True)
                raise os_error_to_edgegan(nospace, path) from None
            errors.append(f"{label}: {why(exc)}")
            (batch_errors if dynamic else []).append(f"{exporter}: {why(exc)}")
            log.debug("%s exporter failed", label, exc_info=True)
            continue
        return OnnxExportInfo(
            exporter=exporter, opset=OPSET, seconds=round(time.perf_counter() - t0, 3),
            torch_version=torch.__version__, onnx_version=onnx.__version__,
            fallback_reason="; ".join(errors) or None, max_abs_err_vs_torch=err,
            batch="dynamic" if dynamic else "static-1",
            batch_reason=None if dynamic else "; ".join(batch_errors) or None,
        )
    path.unlink(missing_ok=True)
    raise ExportError("torch -> ONNX export failed with every exporter, dynamic and batch-1 (" + " | ".join(errors) +
                      "); simplify the unsupported op or export the model to ONNX yourself")


def _find_enospc(exc: BaseException) -> OSError | None:
    """The disk-full OSError anywhere in an exception's cause/context chain, if any."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return exc
        if "No space left on device" in str(exc):
            return OSError(errno.ENOSPC, "No space left on device")
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def validate_onnx(path: Path, inputs: np.ndarray, reference: np.ndarray, atol: float = VALIDATE_ATOL) -> float:
    """Run the ONNX file with onnxruntime on a batch; return max |onnx - torch|."""
    sess = onnx_session(path)
    out = sess.run(None, {INPUT_NAME: inputs})[0]
    if out.shape != reference.shape:
        raise ExportError(f"ONNX output shape {list(out.shape)} differs from torch {list(reference.shape)}")
    err = float(np.max(np.abs(out - reference)))
    if not np.isfinite(err) or err > atol:
        raise ExportError(f"ONNX output differs from torch by {err:.3g} (> {atol:g})")
    return err


def validate_onnx_per_sample(path: Path, inputs: np.ndarray, reference: np.ndarray,
                             atol: float = VALIDATE_ATOL) -> float:
    """validate_onnx for a static batch-1 graph: one input at a time."""
    sess = onnx_session(path)
    out = np.concatenate([sess.run(None, {INPUT_NAME: inputs[i : i + 1]})[0] for i in range(len(inputs))])
    if out.shape != reference.shape:
        raise ExportError(f"ONNX output shape {list(out.shape)} differs from torch {list(reference.shape)}")
    err = float(np.max(np.abs(out - reference)))
    if not np.isfinite(err) or err > atol:
        raise ExportError(f"ONNX output differs from torch by {err:.3g} (> {atol:g}) at batch 1")
    return err
