"""`edgegan export MODEL`: every deployable artifact plus the fidelity table, in one bundle."""
from __future__ import annotations

import argparse
import json
import sys


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in _csv(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name (see `edgegan models`), an edgegan checkpoint, a TorchScript / "
                   "ExportedProgram file, or package.module:factory")
    p.add_argument("--checkpoint", help="state_dict for a zoo architecture (loaded with weights_only=True)")
    p.add_argument("--config", default=None, help="JSON object of model config overrides, e.g. '{\"width\": 16}'")
    p.add_argument("--formats", type=_csv, default=None, help="comma-separated formats (default: all); see `edgegan env`")
    p.add_argument("--calibration", type=int, default=128, help="calibration inputs for int8 (default 128)")
    p.add_argument("--calibration-method", default="minmax", choices=["minmax", "entropy", "percentile"])
    p.add_argument("--inputs", type=int, default=64, dest="n_inputs", help="stored inputs for verification (default 64)")
    p.add_argument("--inputs-file", help=".npy of inputs to store instead of drawing them")
    p.add_argument("--input-shape", type=_ints, help="per-sample input shape for user models, e.g. 100,1,1 "
                   "(default: read off the first layer when unambiguous)")
    p.add_argument("--input-kind", choices=["latent", "image"], help="input kind for user models")
    p.add_argument("--seed", type=int, default=0, help="seed of the stored inputs (calibration uses seed+1)")
    p.add_argument("--int8-io", action="store_true", help="tflite-int8 with int8 input/output tensors")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor instead of per-channel weight scales")
    p.add_argument("--threads", type=int, default=2, help="runtime threads for verification latency")
    p.add_argument("--out", help="bundle directory (default bundles/<model>)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON instead of the table")


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..export.pipeline import ExportConfig, run_export
    from .render import ExportProgress, print_fidelity_table

    model_config = {}
    if args.config:
        try:
            model_config = json.loads(args.config)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config is not valid JSON ({exc.msg}); pass e.g. '{{\"width\": 16}}'") from None
        if not isinstance(model_config, dict):
            raise ConfigError("--config must be a JSON object, e.g. '{\"width\": 16}'")
    kwargs = dict(
        model=args.model, checkpoint=args.checkpoint, model_config=model_config, calibration=args.calibration,
        n_inputs=args.n_inputs, inputs_file=args.inputs_file, input_shape=args.input_shape,
        input_kind=args.input_kind, input_seed=args.seed, calibration_seed=args.seed + 1, out=args.out,
        overwrite=args.force, threads=args.threads,
        convert={"calibration_method": args.calibration_method, "int8_io": args.int8_io,
                 "per_channel": not args.per_tensor},
    )
    if args.formats is not None:
        kwargs["formats"] = args.formats
    cfg = ExportConfig(**kwargs)
    if args.json:
        out, manifest = run_export(cfg)
        json.dump({"bundle": str(out), **manifest}, sys.stdout, indent=2)
        print()
        return 0 if all(a["status"] != "failed" for a in manifest["artifacts"]) else 1
    with ExportProgress(cfg.formats) as progress:
        out, manifest = run_export(cfg, progress=progress)
    print_fidelity_table(manifest, out)
    failed = [a["format"] for a in manifest["artifacts"] if a["status"] == "failed"]
    return 1 if failed else 0
