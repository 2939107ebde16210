"""`edgegan export MODEL`: every deployable artifact plus the fidelity table, in one bundle."""
from __future__ import annotations

import argparse
import json
import sys

from ..util.text import json_object_option, split_csv
from .options import flag_errors


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in split_csv(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def _format_options(items: list[str] | None) -> dict:
    """``["ort-int8.reduce_range=true", ...]`` -> ``{"ort-int8": {"reduce_range": True}}``."""
    from ..errors import ConfigError

    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        fmt, dot, field = key.rpartition(".")
        if not sep or not dot or not fmt or not field:
            raise ConfigError(f"--convert-option {item!r} is not FORMAT.FIELD=VALUE, e.g. ort-int8.reduce_range=true")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(fmt, {})[field] = value
    return out


def _fixed_inputs(items: list[str] | None) -> dict:
    """``["y=3", "noise=n.npy"]`` -> ``{"y": 3, "noise": "n.npy"}``."""
    from ..export.user_inputs import parse_fixed_input

    return dict(parse_fixed_input(item) for item in items or [])


# ExportConfig field -> the flag that sets it (library errors name fields; the CLI names flags)
EXPORT_FLAGS = {"n_inputs": "--inputs", "calibration": "--calibration", "threads": "--threads", "formats": "--formats",
                "input_seed": "--seed", "input_shape": "--input-shape", "input_kind": "--input-kind",
                "calibration_file": "--calibration-file", "output_range": "--output-range", "out": "--out",
                "load_timeout_s": "--timeout", "noise": "--noise", "noise_seed": "--noise-seed",
                "fixed_inputs": "--fixed-input"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="zoo name (see `edgegan models`), an edgegan checkpoint, a TorchScript / "
                   "ExportedProgram file, or package.module:factory (optional with --from-bundle)")
    p.add_argument("--from-bundle", metavar="BUNDLE", help="replay the export_config recorded in BUNDLE/bundle.json "
                   "(model, formats, counts, seeds, converter options); options given here override it; "
                   "--out is not replayed (default bundles/<model>)")
    p.add_argument("--checkpoint", help="state_dict for a zoo architecture (loaded with weights_only=True)")
    p.add_argument("--checkpoint-key", metavar="KEY", help="which state_dict of a checkpoint holding several "
                   "(e.g. g_ema, netG_state_dict, models.G); default: the only generator one, the EMA copy if any")
    p.add_argument("--config", default=None, help="JSON object of model config overrides, e.g. '{\"width\": 16}'")
    p.add_argument("--formats", type=split_csv, default=None, help="comma-separated formats (default: all); see `edgegan env`")
    p.add_argument("--calibration", type=int, help="calibration inputs for int8 (default 128)")
    p.add_argument("--calibration-method", choices=["minmax", "entropy", "percentile"], help="default minmax")
    p.add_argument("--inputs", type=int, dest="n_inputs", help="stored inputs for verification (default 64)")
    p.add_argument("--inputs-file", help=".npy of inputs to store instead of drawing them (also the int8 "
                   "calibration data unless --calibration-file is given)")
    p.add_argument("--calibration-file", metavar="FILE.npy", help=".npy of int8 calibration inputs [N, ...] "
                   "(default: --inputs-file, else drawn from the input spec)")
    p.add_argument("--input-shape", type=_ints, help="per-sample input shape for user models, e.g. 100,1,1 "
                   "(default: read off the first layer when unambiguous)")
    p.add_argument("--input-kind", choices=["latent", "image"], help="input kind for user models: latent (standard "
                   "normal) or image (uniform in [-1, 1]); required with an image-like --input-shape such as 3,32,32")
    p.add_argument("--output-range", metavar="LO,HI", help="the range the model's outputs live in, e.g. 0,1 "
                   "(PSNR peak = HI - LO; default: the zoo entry's, else read off a final tanh/sigmoid/clamp, "
                   "else measured on the float outputs; recorded in bundle.json)")
    p.add_argument("--seed", type=int, help="seed of the stored inputs (default 0; calibration uses seed+1)")
    p.add_argument("--int8-io", action="store_true", default=None, help="tflite-int8 with int8 input/output tensors")
    p.add_argument("--per-tensor", action="store_true", default=None,
                   help="per-tensor instead of per-channel weight scales")
    p.add_argument("--threads", type=int, help="runtime threads for verification latency (default 2)")
    p.add_argument("--timeout", type=float, dest="load_timeout", help="seconds allowed for loading the model, "
                   "e.g. a module:factory (default 600); on POSIX the load is interrupted when it runs over")
    p.add_argument("--convert-option", action="append", metavar="FORMAT.FIELD=VALUE", dest="convert_options",
                   help="a converter's own option, e.g. ort-int8.reduce_range=true (repeatable; see docs/export.md)")
    p.add_argument("--fixed-input", action="append", metavar="NAME=VALUE|file.npy", dest="fixed_inputs",
                   help="fix an extra forward() argument to one sample's value (a number, a JSON list or a .npy), "
                   "e.g. y=3 for a class label; repeatable; recorded in bundle.json")
    p.add_argument("--noise", choices=["fixed"], help="a model drawing noise inside forward(): 'fixed' replaces each "
                   "draw by a seeded buffer (seed recorded in bundle.json)")
    p.add_argument("--noise-seed", type=int, help="seed of --noise fixed (default 0)")
    p.add_argument("--out", help="bundle directory (default bundles/<model>)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON instead of the table")


def _output_range(value):
    from ..output_range import parse_range

    return None if value is None else list(parse_range(value))


class StderrProgress:
    """run_export's progress as one plain line per stage on stderr, for --json (stdout stays the
    JSON document; a long export is not silent)."""

    TEXT = {"load": "loading model", "onnx": "exporting ONNX + validating", "convert": "converting {fmt}",
            "verify": "verifying {fmt}", "latency": "measuring host latency (all formats)"}

    def __init__(self, stream=None) -> None:
        self.stream = stream

    def __call__(self, stage, fmt, rec) -> None:
        if stage == "done" and rec is not None:
            line = f"{fmt}: {rec.status}" + (f" ({rec.reason})" if rec.reason else "")
        elif stage in self.TEXT:
            line = self.TEXT[stage].format(fmt=fmt)
        else:
            return
        print(f"edgegan export: {line}", file=self.stream or sys.stderr, flush=True)


def replayed(bundle: str, given_here: dict) -> dict:
    """ExportConfig keyword arguments: ``bundle``'s recorded export_config with the options given
    on this command line on top (converter options merged per field). The recorded ``out`` and
    ``overwrite`` are not replayed: the replay writes a new bundle."""
    from ..bundle import Bundle
    from ..errors import BundleError
    from ..pipeline import ExportConfig

    recorded = dict(Bundle.load(bundle).manifest.export_config or {})
    if not recorded.get("model"):
        raise BundleError(f"bundle '{bundle}' records no export_config to replay (written by an older edgegan?); "
                          "export by MODEL instead")
    recorded.pop("out", None)
    recorded.pop("overwrite", None)
    try:
        ExportConfig.from_dict(recorded)  # the recorded part alone must be a valid config
    except Exception as exc:  # noqa: BLE001 - ConfigError from any field, one line for the user
        raise BundleError(f"bundle '{bundle}': its export_config cannot be replayed ({exc})") from None
    merged = {**recorded, **given_here}
    if "convert" in given_here:
        convert = dict(recorded.get("convert") or {})
        for key, value in given_here["convert"].items():
            if key == "formats":
                formats = dict(convert.get("formats") or {})
                for fmt, opts in value.items():
                    formats[fmt] = {**formats.get(fmt, {}), **opts}
                convert["formats"] = formats
            else:
                convert[key] = value
        merged["convert"] = convert
    if "input_seed" in given_here and "calibration_seed" not in given_here:
        merged["calibration_seed"] = given_here["input_seed"] + 1
    return merged


def _note_skipped_defaults() -> None:
    """One line per reason for default formats left out (an optional extra not installed)."""
    from ..converters import skipped_default_formats

    by_reason: dict = {}
    for fmt, why in skipped_default_formats():
        by_reason.setdefault(why, []).append(fmt)
    for why, fmts in by_reason.items():
        print(f"edgegan export: note: {', '.join(fmts)} skipped: {why}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..pipeline import PACKAGES, ExportConfig, run_export
    from ..util.deps import require
    from .render import ExportProgress, given, print_fidelity_table
    from .third_party_output import hold_back_third_party_output

    require(*PACKAGES, purpose="export")  # one line before any progress display

    model_config = json_object_option(args.config) if args.config else None
    # CLI options default to None: the config dataclasses own every default
    convert = given(calibration_method=args.calibration_method, int8_io=args.int8_io,
                    per_channel=None if args.per_tensor is None else not args.per_tensor,
                    formats=_format_options(args.convert_options) or None)
    kwargs = given(
        model=args.model, checkpoint=args.checkpoint, checkpoint_key=args.checkpoint_key, model_config=model_config, calibration=args.calibration,
        n_inputs=args.n_inputs, inputs_file=args.inputs_file, calibration_file=args.calibration_file, input_shape=args.input_shape,
        input_kind=args.input_kind, input_seed=args.seed, output_range=_output_range(args.output_range), out=args.out, overwrite=args.force or None,
        threads=args.threads, load_timeout_s=args.load_timeout, formats=args.formats, convert=convert or None,
        calibration_seed=None if args.seed is None else args.seed + 1,
        fixed_inputs=_fixed_inputs(args.fixed_inputs) or None, noise=args.noise, noise_seed=args.noise_seed,
    )
    if args.from_bundle:
        kwargs = replayed(args.from_bundle, kwargs)
    elif args.model is None:
        from ..errors import ConfigError

        raise ConfigError("say what to export: a MODEL (see `edgegan models`) or --from-bundle BUNDLE")
    with flag_errors(EXPORT_FLAGS):
        cfg = ExportConfig(**kwargs)
    if not kwargs.get("formats"):
        _note_skipped_defaults()
    with hold_back_third_party_output(getattr(args, "verbose", False)) as held:
        if args.json:
            out, manifest = run_export(cfg, progress=StderrProgress(held.stream))
        else:
            with ExportProgress(cfg.formats) as progress:
                out, manifest = run_export(cfg, progress=progress)
    failed = [a["format"] for a in manifest["artifacts"] if a["status"] == "failed"]
    if args.json:
        json.dump({"bundle": str(out), **manifest}, sys.stdout, indent=2)
        print()
    else:
        print_fidelity_table(manifest, out)
        base = manifest["export"].get("base_reference") or {}
        if base.get("used"):
            print(f"PSNR is vs this checkpoint's float model; vs its base model {base['model']}: "
                  f"{base['float_psnr_db']} dB for the float model, per format in report.md")
        elif base:
            print(f"base model {base.get('model') or '(none named)'} not compared: {base.get('reason')}")
    if failed and held.lines:
        print(held.note(), file=sys.stderr)
    return 1 if failed else 0
