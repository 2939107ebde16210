"""Turn a user's model spec into a ready generator, safely.

A spec is one of: a zoo name (optionally with ``--checkpoint`` state_dict and ``--config``
overrides), an edgegan checkpoint file (records its family and config), a TorchScript or
ExportedProgram archive, ``package.module:factory``, or an in-memory ``torch.nn.Module``. Without
``--input-shape`` the input of the last three is read off their first layer (``infer.py``). Pickles are only ever read with
``weights_only=True``: a checkpoint that would run code is refused, never executed.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..errors import CheckpointError, ConfigError, first_line
from .spec import InputSpec
from .zoo import FAMILIES, ZOO

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "edgegan-checkpoint"
MAX_PARAMS = 500_000_000  # 2 GiB of float32 weights; the largest zoo generator has 54 M


@dataclasses.dataclass
class LoadedModel:
    """A generator in eval mode plus everything the bundle records about it."""

    name: str
    module: Any
    input_spec: InputSpec
    source: str
    family: Optional[str] = None
    config: Optional[dict] = None
    input_source: str = "spec"
    real_inputs: Optional[Callable[[int, int], np.ndarray]] = None
    compression: list = dataclasses.field(default_factory=list)
    # the uncompressed zoo model a compressed checkpoint came from, and the sha256 of those
    # weights (export compares against it only when the zoo model still has them)
    base_model: Optional[str] = None
    base_weights_sha256: Optional[str] = None
    # the output range the model's provider declares (a zoo entry), and who declares it; None:
    # inferred or measured at export (edgegan.models.output_range)
    output_range: Optional[tuple] = None
    output_range_by: str = ""

    def sample_inputs(self, n: int, seed: int) -> np.ndarray:
        """Inputs from the model's input distribution: real task data when the zoo entry has
        it, otherwise drawn from the input spec."""
        if self.real_inputs is not None:
            return self.input_spec.check(self.real_inputs(n, seed))
        return self.input_spec.sample(n, seed)


def _sniff(path: Path) -> str:
    """'torch-save' | 'torchscript' | 'exported-program' | 'unknown' from the zip layout."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return "unknown"
    if any(n.endswith("archive_format") or "/models/model.json" in n for n in names):
        return "exported-program"
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "torch-save"
    return "unknown"


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` with one-line errors for every way it can fail."""
    import torch

    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint '{p}' does not exist; check the path")
    if p.is_dir():
        raise CheckpointError(f"checkpoint '{p}' is a directory; pass the .pt file inside it")
    if p.stat().st_size == 0:
        raise CheckpointError(f"checkpoint '{p}' is empty (0 bytes); re-save or re-download it")
    from .checkpoints import is_safetensors, read_safetensors

    if is_safetensors(p):
        return read_safetensors(p)
    kind = _sniff(p)
    if kind in ("torchscript", "exported-program"):
        raise CheckpointError(
            f"'{p}' is a {kind} archive, not a state_dict; pass it as the MODEL argument instead of --checkpoint"
        )
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":  # torch's zip container or a protocol-2+ pickle
        raise CheckpointError(f"'{p}' is not a PyTorch checkpoint (it starts with bytes {magic.hex()}, not a torch.save "
                              "file); pass the .pt written by torch.save(state_dict)")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "Weights only load failed" in msg or "Unsupported global" in msg or "unsupported" in msg.lower():
            raise CheckpointError(
                f"refusing '{p}': it holds Python objects that would run code when unpickled; "
                "re-save only tensors with torch.save(model.state_dict(), path)"
            ) from None
        raise CheckpointError(f"'{p}' is not a PyTorch checkpoint ({first_line(exc, 120)})") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for garbage input
        with open(p, "rb") as fh:
            magic = fh.read(4)
        looks_torch = magic == b"PK\x03\x04" or magic[:1] == b"\x80"  # torch zip or legacy pickle
        hint = "truncated or corrupt" if looks_torch else "not a PyTorch checkpoint"
        raise CheckpointError(f"'{p}' is {hint} ({first_line(exc, 160)}); re-save it with torch.save(state_dict)") from None


def _state_dict_of(obj: Any, path: Path, key: Optional[str] = None, module: Any = None):
    """The generator's weights in a loaded checkpoint object (edgegan.models.checkpoints),
    as a ``Selected`` (state, key, note)."""
    from .checkpoints import Selected, select_state_dict, shapes, strip_prefixes

    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT and key is None:
        state = obj.get("state_dict")
        if isinstance(state, dict):
            return Selected(strip_prefixes(state), None, "")
    target = shapes(module.state_dict()) if module is not None else None
    return select_state_dict(obj, path, key, target)


def _load_weights(module: Any, path: Path, what: str, key: Optional[str] = None) -> str:
    """Read ``path``, pick the generator's state_dict and load it strictly into ``module``;
    returns the note saying which key was used ("" for a bare state_dict)."""
    chosen = _state_dict_of(read_checkpoint(path), path, key, module)
    load_state_dict_strict(module, chosen.state, what, path)
    if chosen.note:
        log.info("checkpoint %s: using %s", path, chosen.note)
    return chosen.note


def _with_note(source: str, note: str) -> str:
    return f"{source} [{note}]" if note else source


def load_state_dict_strict(module: Any, state: dict, what: str, path: Path) -> None:
    """Load with a one-line summary of missing / unexpected / mis-shaped keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {list(state[k].shape)} vs model {list(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch (e.g. {shapes[0]})")
        raise CheckpointError(
            f"checkpoint '{path}' does not match {what}: {'; '.join(parts)}; pass the --config the weights were trained with"
        )
    module.load_state_dict(state, strict=True)


def build_family(family: str, config: dict, seed: int = 0):
    """Instantiate a family with a config dict (random init, seeded)."""
    import torch

    fam = FAMILIES.get(family)
    cfg = fam.config_cls.from_dict(config)
    with torch.device("meta"):  # count first: a config can ask for more weights than memory holds
        params = sum(p.numel() for p in fam.build(cfg).parameters())
    if params > MAX_PARAMS:
        raise ConfigError(f"{family} config {json.dumps(cfg.to_dict())[:200]} has {params:,} parameters "
                          f"({params * 4 / 2**30:.1f} GiB as float32), above the {MAX_PARAMS:,} limit; use smaller widths")
    torch.manual_seed(seed)
    module = fam.build(cfg)
    return module, cfg, fam.input_spec(cfg)


def _from_zoo(name: str, checkpoint: Optional[Path], overrides: Optional[dict], seed: int,
              checkpoint_key: Optional[str] = None) -> LoadedModel:
    entry = ZOO.get(name)
    config = {**entry.config, **(overrides or {})}
    module, cfg, spec = build_family(entry.family, config, seed)
    what = f"{entry.family}({', '.join(f'{k}={v}' for k, v in cfg.to_dict().items())})"
    source = f"zoo:{name} (random init, seed {seed})"
    if checkpoint is not None:
        note = _load_weights(module, checkpoint, what, checkpoint_key)
        source = _with_note(f"zoo:{name} + checkpoint {checkpoint}", note)
    elif entry.weights_path is not None:
        if overrides:
            raise ConfigError(f"'{name}' ships trained weights for its own config; drop --config or use '{entry.family}'")
        wp = entry.weights_path
        if not wp.exists():
            raise CheckpointError(
                f"shipped weights {wp.name} are missing from the install; reinstall edgegan or retrain with "
                f"python -m edgegan.models.training.{'digits' if entry.family == 'dcgan' else 'sketch'}"
            )
        _load_weights(module, wp, what)
        source = f"zoo:{name} (shipped weights {wp.name})"
    module.eval()
    return LoadedModel(
        name=name, module=module, input_spec=spec, source=source, family=entry.family, config=cfg.to_dict(),
        input_source=entry.input_source if checkpoint is None else "spec", real_inputs=entry.real_inputs if checkpoint is None else None,
        output_range=entry.output_range, output_range_by=f"zoo entry {name}",
    )


def _from_edgegan_checkpoint(path: Path, obj: dict) -> LoadedModel:
    family, config = obj.get("family"), obj.get("config")
    if not isinstance(family, str) or not isinstance(config, dict):
        raise CheckpointError(f"'{path}' is an edgegan checkpoint without family/config; re-create it with edgegan")
    module, cfg, spec = build_family(family, config)
    load_state_dict_strict(module, _state_dict_of(obj, path, module=module).state, family, path)
    module.eval()
    base = obj.get("base_model")
    real_inputs = ZOO.get(base).real_inputs if isinstance(base, str) and base in ZOO else None
    return LoadedModel(
        name=str(obj.get("name") or path.stem), module=module, input_spec=spec, source=f"checkpoint {path}",
        family=family, config=cfg.to_dict(), compression=list(obj.get("compression") or []),
        real_inputs=real_inputs, input_source=ZOO.get(base).input_source if real_inputs else "spec",
        base_model=base if isinstance(base, str) else None,
        base_weights_sha256=obj.get("base_weights_sha256") if isinstance(obj.get("base_weights_sha256"), str) else None,
    )


def _call_user(fn: Callable[[], Any], what: str, factory: Any = None, config: Optional[dict] = None) -> Any:
    """``fn()`` (user code), any exception it raises turned into one ModelFactoryError line naming
    ``what`` and the original error; a keyword the factory does not take lists the ones it does."""
    from ..errors import EdgeganError, ModelFactoryError

    try:
        return fn()
    except EdgeganError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code; SystemExit(0) must not end edgegan with 0
        hint = "fix the factory or its --config"
        if isinstance(exc, TypeError) and config and factory is not None:
            takes = _keywords(factory)
            bad = sorted(set(config) - set(takes)) if takes is not None else []
            if bad:
                hint = (f"--config key(s) {', '.join(bad)} are not arguments of the factory; it takes "
                        f"{', '.join(takes) or 'no keywords'}")
        raise ModelFactoryError(f"{what} raised {type(exc).__name__}: {first_line(exc, 160, default='')}; {hint}") from None


def _keywords(factory: Any) -> Optional[list]:
    """The keyword arguments ``factory`` accepts (None when it takes ``**kwargs`` or is opaque)."""
    import inspect

    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _weights_only_description(obj: Any) -> str:
    """What a weights-only file holds, for the error that asks for the architecture."""
    from .checkpoints import TOP, candidates

    found = list(candidates(obj))
    if found == [TOP]:
        return "a bare state_dict"
    if found:
        return f"state_dicts under {', '.join(repr(k) for k in found[:6])}"
    return f"no state_dict ({type(obj).__name__})"


def _require_spec(input_spec: Optional[InputSpec], what: str) -> InputSpec:
    if input_spec is None:
        from .infer import ASK

        raise ConfigError(f"{what} does not say what input it takes; {ASK}")
    return input_spec


def _spec_of(module: Any, input_spec: Optional[InputSpec], what: str) -> InputSpec:
    """The given spec, else one inferred from the model's first layer (edgegan.models.infer)."""
    from .infer import infer_input_spec

    return input_spec if input_spec is not None else infer_input_spec(module, what)


def from_module(module: Any, input_spec: Optional[InputSpec] = None, name: Optional[str] = None,
                checkpoint: Optional[Path] = None, checkpoint_key: Optional[str] = None) -> LoadedModel:
    """A LoadedModel around an in-memory ``nn.Module`` (copied, so the caller's module keeps its
    mode and weights whatever the later stages do)."""
    import copy

    import torch

    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(module).__name__}")
    cls = type(module).__name__ if not isinstance(module, torch.jit.ScriptModule) else str(getattr(module, "original_name", "ScriptModule"))
    try:
        module = copy.deepcopy(module)
    except Exception as exc:  # noqa: BLE001 - some modules (hooks holding locks, ...) refuse to copy
        raise ConfigError(f"cannot copy the {cls} module ({first_line(exc, 120)}); make it deep-copyable") from None
    note = _load_weights(module, checkpoint, cls, checkpoint_key) if checkpoint is not None else ""
    _call_user(module.eval, f"module {cls} (its eval())")
    spec = _spec_of(module, input_spec, f"module {cls}")
    return LoadedModel(name or cls, module, spec, _with_note(f"in-memory {cls}" + (f" + checkpoint {checkpoint}" if checkpoint else ""), note))


def load_generator(
    spec: Any,
    checkpoint: Optional[str | Path] = None,
    config: Optional[dict] = None,
    input_spec: Optional[InputSpec] = None,
    seed: int = 0,
    checkpoint_key: Optional[str] = None,
) -> LoadedModel:
    """Resolve any supported model spec (a name or path string, or an in-memory
    ``torch.nn.Module``) to a :class:`LoadedModel` in eval mode. ``checkpoint_key``: which
    state_dict of a checkpoint holding several (``--checkpoint-key``; see models.checkpoints)."""
    import torch

    ckpt = Path(checkpoint) if checkpoint is not None else None
    if isinstance(spec, torch.nn.Module):
        return from_module(spec, input_spec, checkpoint=ckpt, checkpoint_key=checkpoint_key)
    if isinstance(spec, str) and not spec.strip():
        raise ConfigError("the model is empty; pass a zoo name (see `edgegan models`), a checkpoint or TorchScript "
                          "/ ExportedProgram file, or package.module:factory")
    if checkpoint is not None and not str(checkpoint).strip():
        raise ConfigError("--checkpoint is empty; pass the path of a state_dict .pt file")
    if spec in ZOO:
        return _from_zoo(spec, ckpt, config, seed, checkpoint_key)
    path = Path(spec)
    if path.exists():
        kind = _sniff(path) if path.is_file() else "unknown"
        if kind == "torchscript":
            try:
                module = torch.jit.load(str(path), map_location="cpu")
            except RuntimeError as exc:
                raise CheckpointError(f"'{path}' is a corrupt TorchScript archive ({first_line(exc, 120)})") from None
            module.eval()
            return LoadedModel(path.stem, module, _spec_of(module, input_spec, f"TorchScript '{path}'"), f"torchscript {path}")
        if kind == "exported-program":
            return _from_exported_program(path, input_spec)
        obj = read_checkpoint(path)
        if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
            return _from_edgegan_checkpoint(path, obj)
        raise CheckpointError(f"'{path}' holds {_weights_only_description(obj)} but no architecture; name it: "
                              f"edgegan export <zoo-model or package.module:factory> --checkpoint {path} [--config JSON]")
    if ":" in spec and not spec.startswith(("/", ".")):
        mod_name, _, fn_name = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import model factory '{spec}' ({exc}); check PYTHONPATH and the name") from None
        module = _call_user(lambda: factory(**(config or {})), f"model factory '{spec}'", factory, config)
        if not isinstance(module, torch.nn.Module):
            raise ConfigError(f"factory '{spec}' returned {type(module).__name__}, not a torch.nn.Module")
        note = _load_weights(module, ckpt, spec, checkpoint_key) if ckpt is not None else ""
        _call_user(module.eval, f"model factory '{spec}' (its module's eval())")
        source = _with_note(f"factory {spec}" + (f" + checkpoint {ckpt}" if ckpt else ""), note)
        return LoadedModel(fn_name, module, _spec_of(module, input_spec, f"factory '{spec}'"), source)
    ZOO.get(spec)  # raises UnknownNameError with the zoo listing and a did-you-mean
    raise AssertionError("unreachable")


def _from_exported_program(path: Path, input_spec: Optional[InputSpec]) -> LoadedModel:
    """A ``torch.export`` archive, checked first so loading it cannot run code (pt2_safety);
    a graph exported with a fixed batch (torch.export's default) is relaxed to any batch when
    its ops allow it, checked sample by sample against the original."""
    import torch

    from .pt2_safety import check_exported_program_archive

    check_exported_program_archive(path)
    try:
        ep = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad archives
        raise CheckpointError(f"'{path}' is a corrupt ExportedProgram ({first_line(exc, 120)})") from None
    sig = ep.graph_signature
    shapes = [n.meta["val"].shape for n in ep.graph.nodes if n.op == "placeholder"
              and n.name not in sig.inputs_to_parameters and n.name not in sig.inputs_to_buffers]
    if input_spec is None and len(shapes) == 1:
        shape = shapes[0]
        input_spec = InputSpec(shape=[int(s) for s in shape[1:]], kind="latent" if len(shape) == 4 and shape[2] == 1 else "image",
                               distribution="normal" if shape[-1] == 1 else "uniform")
    spec = _require_spec(input_spec, f"ExportedProgram '{path}'")
    module, source = ep.module(), f"exported-program {path}"
    if len(shapes) == 1 and isinstance(shapes[0][0], int):
        module = _any_batch(ep, int(shapes[0][0]), spec, path)
        source += f" (exported with a fixed batch of {int(shapes[0][0])}; relaxed to any batch, checked per sample)"
    elif len(shapes) == 1:
        source += " (dynamic batch)"
    return LoadedModel(path.stem, module, spec, source)


def _any_batch(ep: Any, fixed: int, spec: InputSpec, path: Path) -> Any:
    """The program's graph without its batch-size guard, if it computes each sample the same at
    any batch (compared with the guarded program run at its own batch, padded); else a
    CheckpointError that says how to re-export. Every runtime runs batch 1, so a graph fixed at
    batch 4 is still usable when nothing in it depends on the 4."""
    import torch

    how = ("re-export it at batch 1, torch.export.export(model, (x[:1],)), or with a dynamic batch: "
           "torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim('batch')},))")
    relaxed = ep.module(check_guards=False)
    relaxed._forward_pre_hooks.clear()  # the remaining input-shape check torch installs as a pre-hook
    guarded = ep.module()
    n = fixed * -(-3 // fixed)  # at least 3 samples, whole exported batches
    other = 3 if fixed != 3 else 2  # a batch size the program was not exported with
    x = torch.from_numpy(np.ascontiguousarray(spec.sample(n, 0)))
    try:
        with torch.no_grad():
            want = torch.cat([guarded(x[i:i + fixed]) for i in range(0, n, fixed)])
            alone = torch.cat([relaxed(x[i:i + 1]) for i in range(n)])
            together = relaxed(x[:other])
        same = (alone.shape == want.shape and torch.allclose(alone, want, atol=1e-5, rtol=1e-4)
                and together.shape == want[:other].shape and torch.allclose(together, want[:other], atol=1e-5, rtol=1e-4))
    except Exception:  # noqa: BLE001 - the graph hard-codes its batch somewhere (a view, a reshape)
        same = False
    if not same:
        raise CheckpointError(f"'{path}' was exported with a fixed batch of {fixed} and its graph only runs that "
                              f"batch (edgegan runs every runtime at batch 1); {how}")
    return relaxed


def save_checkpoint(path: str | Path, module: Any, family: str, config: dict, name: str,
                    base_model: Optional[str] = None, compression: Optional[list] = None,
                    base_weights_sha256: Optional[str] = None) -> None:
    """Write an edgegan checkpoint: tensors + plain metadata, loadable with weights_only=True."""
    import torch

    obj = {
        "format": CHECKPOINT_FORMAT, "name": name, "family": family, "config": dict(config),
        "base_model": base_model, "compression": list(compression or []),
        "base_weights_sha256": base_weights_sha256,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()},
    }
    torch.save(obj, path)
