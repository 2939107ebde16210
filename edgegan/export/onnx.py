"""torch -> ONNX: the dynamo exporter at opset 18 first, the TorchScript-based exporter as a
fallback; one self-contained file (no external data, which onnx2tf cannot follow), a dynamic
batch axis, the ONNX checker, and validation against torch with onnxruntime."""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
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


def torch_outputs(module, inputs: np.ndarray, batch: int = 16) -> np.ndarray:
    """Run the float torch model on ``inputs`` in chunks."""
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            outs.append(module(torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch]))).numpy())
    return np.concatenate(outs).astype(np.float32)


def _export_dynamo(module, example, path: Path) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), dynamo=True, opset_version=OPSET, external_data=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},), optimize=True, verbose=False,
        )


def _export_legacy(module, example, path: Path) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )


def _check(path: Path) -> None:
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    names = [i.name for i in model.graph.input]
    if names != [INPUT_NAME] or len(model.graph.output) != 1:
        raise ExportError(f"exported graph has inputs {names} and {len(model.graph.output)} outputs; "
                          "edgegan expects one input and one output")


def onnx_session(path: Path, threads: int = 1):
    """An ORT session with the same options the device runner uses."""
    import onnxruntime as ort

    from ..runner.edgegan_runner import onnxruntime_session_options

    return ort.InferenceSession(str(path), onnxruntime_session_options(ort, threads),
                                providers=["CPUExecutionProvider"])


def export_onnx(module, inputs: np.ndarray, path: Path, reference: np.ndarray | None = None,
                prefer: str = "dynamo") -> OnnxExportInfo:
    """Export ``module`` to ``path`` and validate it on ``inputs`` against torch.

    Tries the dynamo exporter, falls back to the legacy one when dynamo fails or its graph does
    not validate. Raises ExportError with both reasons when neither works."""
    import onnx
    import torch

    example = torch.from_numpy(np.ascontiguousarray(inputs[:1]))
    if reference is None:
        reference = torch_outputs(module, inputs)
    order = ["dynamo", "legacy"] if prefer == "dynamo" else ["legacy", "dynamo"]
    errors: list[str] = []
    for exporter in order:
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                (_export_dynamo if exporter == "dynamo" else _export_legacy)(module, example, path)
            _check(path)
            err = validate_onnx(path, inputs, reference)
        except ExportError as exc:
            errors.append(f"{exporter}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - exporters raise anything; we report and fall back
            nospace = _find_enospc(exc)
            if nospace is not None:
                from ..bundle import os_error_to_edgegan

                path.unlink(missing_ok=True)
                raise os_error_to_edgegan(nospace, path) from None
            errors.append(f"{exporter}: {type(exc).__name__}: {first_line(exc)}")
            log.debug("%s exporter failed", exporter, exc_info=True)
            continue
        return OnnxExportInfo(
            exporter=exporter, opset=OPSET, seconds=round(time.perf_counter() - t0, 3),
            torch_version=torch.__version__, onnx_version=onnx.__version__,
            fallback_reason="; ".join(errors) or None, max_abs_err_vs_torch=err,
        )
    path.unlink(missing_ok=True)
    raise ExportError("torch -> ONNX export failed with every exporter (" + " | ".join(errors) +
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
