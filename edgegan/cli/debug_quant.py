"""`edgegan debug-quant BUNDLE --format ort-int8|tflite-int8|executorch-int8`: where int8 loses its dB, op by op.

Runs the float and the quantized model of the bundle on the same stored inputs, compares every
matched intermediate tensor and ranks the ops by the error they introduce themselves (an op
fed the float model's inputs) rather than the error they inherit from upstream. Writes
debug.json and sqnr.png to --out."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_OUT = Path("debug-quant")
# formats whose int8 model is re-made from the bundle's ONNX (onnx2tf) for TF's debugger
TFLITE_FORMATS = ("tflite-int8", "tflite-int8-mixed")
# formats whose PT2E quantization is replayed in torch from the bundle's rebuilt model
EXECUTORCH_FORMATS = ("executorch-int8",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..quantdebug.bundle import DEBUGGABLE

    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder (from edgegan export)")
    p.add_argument("--format", required=True, choices=sorted([*DEBUGGABLE, *TFLITE_FORMATS, *EXECUTORCH_FORMATS]),
                   help="quantized artifact to debug")
    p.add_argument("--inputs", type=int, default=8, metavar="N", help="stored inputs to run (default 8)")
    p.add_argument("--top", type=int, default=15, metavar="N", help="rows of the ranked table (default 15)")
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads (default 2)")
    p.add_argument("--out", type=Path, default=None, help=f"folder for debug.json and sqnr.png (default ./{DEFAULT_OUT})")
    p.add_argument("--json", action="store_true", help="print debug.json to stdout instead of the table")


def _num(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def _print_table(report, paths: dict, top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"edgegan debug-quant {report.format}: ops ranked by the error they introduce "
                        f"(output {report.output_psnr_db:.1f} dB PSNR, {report.output_sqnr_db:.1f} dB SQNR vs float)")
    for col, justify in (("#", "right"), ("op", "left"), ("type", "left"), ("introduced dB", "right"),
                         ("total dB", "right"), ("own share", "right"), ("float range", "right"),
                         ("scale", "right"), ("zp", "right"), ("clipped", "right"), ("MACs", "right")):
        table.add_column(col, justify=justify)
    for rank, op in enumerate(report.ranked[:top], 1):
        share = op.introduced_noise_fraction
        table.add_row(str(rank), op.name, op.op_type, _num(op.introduced_sqnr_db), _num(op.sqnr_db),
                      "-" if share is None else f"{share:.0%}", f"{op.float_min:.3g}..{op.float_max:.3g}",
                      _num(op.scale, ".3g"), _num(op.zero_point, "d"), f"{op.clipped_fraction:.1%}",
                      f"{op.macs:,}" if op.macs else "-")
    console.print(table)
    how = ("TF's debugger: the float op on the int8 model's dequantized inputs" if "TF" in report.backend
           else "the op's segment (e.g. conv + fused ReLU) alone in int8 on the float graph's values" if "PT2E" in
           report.backend else "the op alone in int8 on the float model's inputs")
    console.print(f"  introduced: SQNR of the op's own int8 step ({how}); total: the quantized model's tensor vs "
                  "float; own share: the part of the total noise the op adds itself")
    if len(report.ops) > top:
        console.print(f"  {len(report.ops) - top} more op(s) in {paths['json']}")
    for note in report.notes:
        console.print(f"  [yellow]note:[/] {note}")
    if report.unmatched:
        console.print(f"  {len(report.unmatched)} quantized tensor(s) had no float counterpart: "
                      + ", ".join(report.unmatched[:5]))
    console.print(f"  wrote {paths['json']} and {paths['plot']}")


def _delegation_rewrite(module, inputs, equalize=None, deconvs=False, crop=False, latent=False, nhwc=False):
    """executorch-int8's delegation rewrite, as the converter applies it (the norm inputs
    equalized on ``equalize``, the transposed convs in sub-pixel form with ``deconvs`` (cropping
    with ``crop``, interleaved channels-last with ``nhwc``), the one on a 1x1 input linear with
    ``latent``, when the artifact records
    them): (module, the class names PT2E leaves float)."""
    from ..converters.executorch_rewrite import KEEP_FLOAT, delegation_rewrite

    done = delegation_rewrite(module, inputs, equalize=equalize, deconvs=deconvs, crop=crop, latent=latent,
                              nhwc=nhwc)
    return (module if done is None else done.module), KEEP_FLOAT


def run(args: argparse.Namespace) -> int:
    from ..bundle import _check_writable
    from ..quantdebug.bundle import debug_bundle
    from ..quantdebug.plot import plot_sqnr

    out = args.out or DEFAULT_OUT
    _check_writable(out)
    if args.inputs < 1:
        from ..errors import ConfigError

        raise ConfigError("--inputs must be at least 1")
    if args.format in TFLITE_FORMATS:
        from ..converters.tflite_int8_mixed import debug_tflite_bundle

        report = debug_tflite_bundle(args.bundle, args.format, n_inputs=args.inputs)
    elif args.format in EXECUTORCH_FORMATS:
        from ..quantdebug.executorch import debug_executorch_bundle

        report = debug_executorch_bundle(args.bundle, args.format, n_inputs=args.inputs, rewrite=_delegation_rewrite)
    else:
        report = debug_bundle(args.bundle, args.format, n_inputs=args.inputs, threads=args.threads)
    paths = {"json": report.save(out / "debug.json"), "plot": plot_sqnr(report, out / "sqnr.png")}
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_table(report, paths, args.top)
    return 0
