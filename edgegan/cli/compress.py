"""`edgegan compress MODEL --method ... --out CKPT`: compression of a generator, post-training
(clip, quant, prune, ...) or by training (kd: a smaller student; its state and training.json
go to OUT.training/ unless --work-dir says otherwise, and --resume continues from there).

Writes an edgegan checkpoint (loadable by every other verb: ``edgegan export CKPT``) and its
``NAME.compression.json`` next to it; the same records travel inside the checkpoint into
bundle.json. ``--pipeline`` takes a JSON list of steps (inline or a file) instead of one
``--method``; ``--dry-run`` checks the command line (model, layers, configs) without writing anything
and prints that JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..util.text import json_object_option
from ..util.text import split_csv
from .options import argument_kwargs, flag_errors, flag_name

# options of the verb itself; a method field whose flag would clash gets --<method>-<field>
RESERVED_FLAGS = {"--checkpoint", "--config", "--method", "--pipeline", "--out", "--record", "--name", "--force",
                  "--layers", "--exclude", "--bn-recalibrate", "--list-layers", "--dry-run", "--json", "--help",
                  "--verbose"}


@dataclasses.dataclass
class MethodFlag:
    """One generated flag and the (method, config field) pairs it sets (several methods may
    share a flag of the same name and type)."""

    flag: str
    kwargs: dict
    owners: list[tuple[str, str]]

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


def method_flags() -> list[MethodFlag]:
    """Every compression method's config fields as flags, from the method registry."""
    from ..compress import METHODS

    flags: dict[str, MethodFlag] = {}
    for method in METHODS.values():
        for f in dataclasses.fields(method.config_cls):
            flag = flag_name(f)
            kw = argument_kwargs(method.config_cls, f) if flag else None
            if kw is None:
                continue
            if flag in RESERVED_FLAGS or (flag in flags and _kind(flags[flag].kwargs) != _kind(kw)):
                flag = f"--{method.name}-{f.name.replace('_', '-')}"
            if flag in flags:
                flags[flag].owners.append((method.name, f.name))
            else:
                flags[flag] = MethodFlag(flag, kw, [(method.name, f.name)])
    return list(flags.values())


def _kind(kw: dict) -> tuple:
    return kw.get("type"), kw.get("action"), tuple(kw.get("choices") or ())


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..compress import METHODS

    p.add_argument("model", help="zoo name (see `edgegan models`) or an edgegan checkpoint (e.g. from a previous compress)")
    p.add_argument("--checkpoint", help="state_dict for a zoo architecture (loaded with weights_only=True)")
    p.add_argument("--config", default=None, help="JSON object of model config overrides for --checkpoint")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--method", choices=[m.name for m in METHODS.values()], help="one compression method")
    how.add_argument("--pipeline", help="JSON list of {\"method\", \"config\"} steps, inline or a file path")
    p.add_argument("--out", help="compressed checkpoint to write (.pt)")
    p.add_argument("--record", help="where to write the compression record (default: NAME.compression.json next to --out NAME.pt)")
    p.add_argument("--name", help="model name stored in the checkpoint (default: MODEL-<method tags>)")
    p.add_argument("--force", action="store_true", help="replace an existing --out checkpoint")
    p.add_argument("--layers", type=split_csv, help="only these layers / channel groups (comma-separated; see --list-layers)")
    p.add_argument("--exclude", type=split_csv, help="leave these layers / channel groups alone")
    groups = {}
    for mf in method_flags():
        method = mf.owners[0][0]
        if method not in groups:
            groups[method] = p.add_argument_group(method, METHODS.get(method).description)
        kw = dict(mf.kwargs)
        if len(mf.owners) > 1:
            kw["help"] += " (" + ", ".join(f"{m}.{f}" for m, f in mf.owners) + ")"
        groups[method].add_argument(mf.flag, dest=mf.dest, **kw)
    p.add_argument("--bn-recalibrate", type=int, metavar="N",
                   help="then re-estimate BatchNorm statistics on N inputs (a bn-recalibrate step; with "
                        "--method bn-recalibrate: its sample count)")
    p.add_argument("--list-layers", action="store_true", help="print the model's layers and channel groups and exit")
    p.add_argument("--dry-run", action="store_true", help="check the model, layers and configs (the pipeline runs in memory, "
                        "nothing is written), print the pipeline JSON this command would run and exit")
    p.add_argument("--json", action="store_true", help="print the compression record (with --list-layers: the layer listing) as JSON")


def build_pipeline(args: argparse.Namespace):
    """The PipelineConfig described by the command line (ConfigError on misplaced options)."""
    from ..compress import METHODS, PipelineConfig, PipelineStep
    from ..errors import ConfigError

    flags = method_flags()
    given = {mf.flag: (mf, getattr(args, mf.dest)) for mf in flags if getattr(args, mf.dest, None) is not None}
    if args.pipeline is not None:
        if args.bn_recalibrate is not None:
            given = {"--bn-recalibrate": (None, args.bn_recalibrate), **given}
        if given or args.layers or args.exclude:
            flag = next(iter(given), "--layers")
            raise ConfigError(f"{flag} cannot be combined with --pipeline; put it in the pipeline's step config")
        text = args.pipeline
        if not text.lstrip().startswith(("[", "{")):
            path = Path(text)
            if not path.is_file():
                raise ConfigError(f"--pipeline '{text}' is neither JSON nor an existing file; pass a JSON list of steps")
            if path.stat().st_size > 1 << 20:
                raise ConfigError(f"--pipeline file '{path}' is {path.stat().st_size:,} bytes; a pipeline is a small "
                                  "JSON list of steps")
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                raise ConfigError(f"--pipeline file '{path}' is not text (not UTF-8); pass a JSON list of steps") from None
        return PipelineConfig.from_json(text)
    if args.method is None:
        names = "|".join(m.name for m in METHODS.values())
        raise ConfigError(f"say what to do: --method {names}, or --pipeline JSON")
    config: dict = {}
    for flag, (mf, value) in given.items():
        fields = [f for m, f in mf.owners if m == args.method]
        if not fields:
            owners = "|".join(m for m, _ in mf.owners)
            raise ConfigError(f"{flag} belongs to --method {owners}, not {args.method}; "
                              "drop it or use --pipeline to combine methods")
        config[fields[0]] = value
    if args.layers:
        config["layers"] = args.layers
    if args.exclude:
        config["exclude"] = args.exclude
    recal = {} if args.bn_recalibrate is None else {"samples": args.bn_recalibrate}
    to_flag = {f: mf.flag for mf in flags for m, f in mf.owners if m == args.method}
    with flag_errors({**to_flag, "layers": "--layers", "exclude": "--exclude"}):
        if args.method == "bn-recalibrate":
            return PipelineConfig([PipelineStep(args.method, {**config, **recal})])
        steps = [PipelineStep(args.method, config)]
    if args.bn_recalibrate is not None:
        with flag_errors({"samples": "--bn-recalibrate"}):
            steps.append(PipelineStep("bn-recalibrate", recal))
    return PipelineConfig(steps)


def _tag(step) -> str:
    """The output-name part of one step, from its method's config (``q4``, ``sp50``, ``bnr``)."""
    from ..compress import METHODS

    return METHODS.get(step.method).tag(step.typed_config())


def _base_model_name(spec: str) -> str | None:
    """The zoo model a compressed model descends from (kept through repeated compression)."""
    from ..models.loading import CHECKPOINT_FORMAT, read_checkpoint
    from ..models.zoo import ZOO

    if spec in ZOO:
        return spec
    path = Path(spec)
    if path.is_file():
        obj = read_checkpoint(path)
        if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
            base = obj.get("base_model")
            return base if isinstance(base, str) else None
    return None


def _load(args: argparse.Namespace):
    from ..models import load_generator

    overrides = json_object_option(args.config) if args.config else None
    return load_generator(args.model, args.checkpoint, overrides)


def layer_listing(model) -> dict:
    """The model's weight layers (PyTorch's own constructor description: in, out, kernel) and,
    for families that support channel-prune, its channel groups; plain JSON."""
    from ..compress.layers import weight_layers
    from ..compress.posttrain.channel_layout import channel_layout, prunable_families

    layers = []
    for name, layer in weight_layers(model.module).items():
        kind = type(layer).__name__
        layers.append({"name": name, "type": kind, "description": f"{kind}({layer.extra_repr()})",
                       "weight_shape": list(layer.weight.shape)})
    groups = None
    if model.family in prunable_families():
        from ..compress.posttrain.channel_prune import _family_config

        layout = channel_layout(model.family, _family_config(model), model.module)
        groups = [{"name": name, "channels": group.width, "producers": list(group.producers),
                   "norms": list(group.norms)} for name, group in layout.groups.items()]
    return {"model": model.name, "layers": layers, "channel_groups": groups}


def _list_layers(model, as_json: bool) -> int:
    listing = layer_listing(model)
    if as_json:
        json.dump(listing, sys.stdout, indent=2)
        print()
        return 0
    print(f"weight layers of {listing['model']} (for --layers/--exclude of clip, quant, prune):")
    for layer in listing["layers"]:
        print(f"  {layer['name']:24s} {layer['description']}")
    if listing["channel_groups"] is not None:
        print("channel groups (for --layers/--exclude of channel-prune):")
        for group in listing["channel_groups"]:
            norm = "norm: " + ", ".join(group["norms"]) if group["norms"] else "no norm layer"
            print(f"  {group['name']:24s} {group['channels']:5d} channels, producers "
                  f"{', '.join(group['producers'])}; {norm}")
    return 0


def _print_summary(record: dict, ckpt: Path, record_path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    base, now = record.get("base_summary") or {}, record["summary"]
    table = Table(title=f"{record['name']}  ({' -> '.join(s['method'] for s in record['pipeline'])})")
    for col in ("", "base", "compressed", "ratio"):
        table.add_column(col, justify="left" if not col else "right")
    for key, label in (("params", "parameters"), ("macs", "MACs"), ("float_bytes", "float32 size (bytes)"),
                       ("packed_bytes", "packed size (bytes)"), ("int8_container_bytes", "as int8 (bytes)")):
        b, c = base.get(key), now.get(key)
        ratio = f"{c / b:.3f}" if b else ""
        table.add_row(label, f"{b:,}" if b is not None else "", f"{c:,}", ratio)
    table.add_row("weight sparsity", f"{base.get('weight_sparsity', 0):.1%}", f"{now['weight_sparsity']:.1%}", "")
    console = Console()
    console.print(table)
    console.print(f"checkpoint: {ckpt} ({record['checkpoint']['bytes']:,} bytes on disk)\nrecord:     {record_path}")
    console.print("packed size = k bits per quantized weight (+ sparse bitmap where smaller); the checkpoint and "
                  "the exported ONNX hold float32 values, see docs/compression.md")


def _with_training_defaults(pipeline, out: Path):
    """Training steps without ``work_dir`` keep their state and training.json in OUT.training/
    (OUT.training-2/ ... for a second training step), so --resume finds them again."""
    from ..compress import METHODS, PipelineConfig, PipelineStep

    steps, n = [], 0
    for step in pipeline.steps:
        config = dict(step.config)
        if METHODS.get(step.method).kind == "training" and not config.get("work_dir"):
            n += 1
            config["work_dir"] = str(out.with_name(out.stem + ".training" + (f"-{n}" if n > 1 else "")))
        steps.append(PipelineStep(step.method, config))
    return PipelineConfig(steps)


def _run_pipeline(model, pipeline, quiet: bool):
    """compress(), with a rich progress bar (step, losses, time) while training steps run."""
    import contextlib

    from ..compress import METHODS, compress
    from ..compress.training import progress_to

    if quiet or not any(METHODS.get(s.method).kind == "training" for s in pipeline.steps):
        return compress(model, pipeline)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                           TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
                                           transient=False))
        task = bar.add_task("train", total=None, losses="")

        def update(step: int, total: int, losses: dict) -> None:
            text = "  ".join(f"{k} {v:.4f}" for k, v in losses.items())
            bar.update(task, completed=step, total=total, losses=text)

        stack.enter_context(progress_to(update))
        return compress(model, pipeline)


def run(args: argparse.Namespace) -> int:
    from ..compress import PipelineConfig, PipelineStep, compress, save_compressed
    from ..compress.io import check_output_path, record_path_for
    from ..errors import ConfigError, OutputError

    if args.list_layers:
        return _list_layers(_load(args), args.json)
    pipeline = build_pipeline(args)
    if args.dry_run:  # every field spelled out, so the printed JSON replays exactly via --pipeline
        # validate as the real run would: load the model and apply the pipeline in memory
        # (unknown model, layer or group, or a config the model cannot take -> one-line error)
        compress(_load(args), pipeline)
        print(PipelineConfig([PipelineStep(s.method, s.typed_config().to_dict()) for s in pipeline.steps]).to_json())
        return 0
    if not args.out:
        raise ConfigError("--out is required: the compressed checkpoint to write, e.g. --out out/model.pt")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise OutputError(f"'{out}' exists; pass --force to replace it or choose another --out")
    check_output_path(out, "--out")  # both destinations checked before any work
    check_output_path(args.record if args.record else record_path_for(out), "--record")
    pipeline = _with_training_defaults(pipeline, out)
    model = _load(args)
    compressed = _run_pipeline(model, pipeline, quiet=args.json)
    name = args.name or "-".join([Path(model.name).stem, *(_tag(s) for s in pipeline.steps)])
    compressed = dataclasses.replace(compressed, name=name)
    ckpt, record_path, record = save_compressed(compressed, out, args.record, base=model,
                                                base_model=_base_model_name(args.model))
    if args.json:
        json.dump(record, sys.stdout, indent=2)
        print()
    else:
        _print_summary(record, ckpt, record_path)
    return 0
