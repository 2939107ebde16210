"""Find the generator's weights in a checkpoint file, whatever layout its project saved.

Training code saves weights in many shapes: a bare ``state_dict``; a dict holding it under
``state_dict`` / ``model`` / ``netG`` / ``netG_state_dict`` / ``generator`` / ``g_ema`` /
``params_ema`` ... next to the discriminator, optimizers and counters; nested one or two levels
deep; with the ``module.`` prefix of DataParallel / DDP (or ``_orig_mod.`` of torch.compile);
or as a ``.safetensors`` file; or, as a LightningModule saves it, ONE state_dict holding every
network, its keys prefixed by the attribute name (``generator.`` / ``discriminator.``, ``G.`` /
``netG.`` / ``gen.`` ...). :func:`select_state_dict` lists every dict of tensors in the object
(its *candidates*, named by their key path such as ``models.g_ema``; a state_dict with a
generator-named key prefix is split into one candidate per prefix, named ``PATH:PREFIX`` such
as ``state_dict:generator.``, or just ``generator.`` at the top level) and picks one:

1. ``key`` (``--checkpoint-key``) when given;
2. else drop discriminator / optimizer entries; with one candidate left, that one;
3. else, when the target module is known, the candidates whose keys and shapes match it;
4. else the single EMA copy among them (EMA weights are what a trained GAN is sampled with);
5. else a one-line :class:`CheckpointError` listing the candidates and ``--checkpoint-key``.

The choice is returned with a note (``key 'g_ema' (EMA weights)``) the loader records as the
model's source, so the bundle says which weights it holds.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Optional

from ..errors import CheckpointError, MissingDependencyError, first_line

MAX_DEPTH = 3            # nesting levels searched for state_dicts (root = 0)
PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DDP, torch.compile
TOP = "(top level)"
_EMA = re.compile(r"(^|[._])ema($|[._])|_ema|ema_", re.IGNORECASE)
_NOT_GENERATOR = re.compile(r"(^|[._])(net_?d|d|disc|discriminator|critic|d_ema)($|[._])|optim|sched|scaler",
                            re.IGNORECASE)
# the attribute names a multi-network module (LightningModule, a GAN wrapper) gives its generator
_GENERATOR_PREFIX = re.compile(r"^((ema_?)?(net_?g|g|gen|generator)(_?ema)?)$", re.IGNORECASE)
PREFIX_SEP = ":"  # candidate name of a key-prefix group: "state_dict:generator."


@dataclasses.dataclass
class Selected:
    """The chosen state_dict (prefixes stripped), its key path and why it was chosen."""

    state: dict
    key: Optional[str]   # None: the file is a bare state_dict
    note: str            # e.g. "key 'g_ema' (EMA weights)"; "" for a bare state_dict


def is_safetensors(path: Path) -> bool:
    """A safetensors file: named ``.safetensors``, or an 8-byte little-endian header length
    followed by a JSON object that fits in the file."""
    if path.suffix == ".safetensors":
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError:
        return False
    if len(head) < 9 or head[8:9] != b"{":
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= path.stat().st_size - 8


def read_safetensors(path: Path) -> dict:
    """Tensors of a ``.safetensors`` file (no code can run: the format is a JSON header + raw bytes)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise MissingDependencyError(f"'{path}' is a safetensors file and the safetensors package is not "
                                     "installed; pip install safetensors (part of edgegan[torch])") from None
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError and others
        raise CheckpointError(f"'{path}' is a corrupt safetensors file ({first_line(exc, 160)}); re-save it") from None


def _is_state_dict(obj: Any) -> bool:
    import torch

    return (isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


def candidates(obj: Any) -> dict[str, dict]:
    """key path -> every dict of tensors in ``obj`` (``TOP`` when ``obj`` itself is one).
    Optimizer states (``param_groups``) are not searched."""
    out: dict[str, dict] = {}

    def walk(node: Any, path: str, depth: int) -> None:
        if _is_state_dict(node):
            out[path or TOP] = node
            return
        if not isinstance(node, dict) or depth >= MAX_DEPTH or "param_groups" in node:
            return
        for k, v in node.items():
            if isinstance(k, str) and isinstance(v, dict):
                walk(v, f"{path}.{k}" if path else k, depth + 1)

    walk(obj, "", 0)
    return out


def strip_prefixes(state: dict) -> dict:
    """Keys without the wrapper prefixes every key shares (``module.module.x`` -> ``x``)."""
    keys = list(state)
    changed = True
    while changed:
        changed = False
        for p in PREFIXES:
            if keys and all(k.startswith(p) for k in keys):
                keys = [k[len(p):] for k in keys]
                changed = True
    return dict(zip(keys, state.values()))


def split_by_prefix(state: dict) -> dict[str, dict]:
    """prefix (``generator.``) -> its keys with the prefix stripped, when ``state`` holds several
    networks under attribute-name prefixes, one of them named like a generator; else {}."""
    groups: dict[str, dict] = {}
    for k, v in strip_prefixes(state).items():
        head, dot, rest = k.partition(".")
        if not dot:
            return {}
        groups.setdefault(head + ".", {})[rest] = v
    if not any(_GENERATOR_PREFIX.match(p[:-1]) for p in groups):
        return {}
    return {p: strip_prefixes(sub) for p, sub in groups.items()}


def _group_name(path: str, prefix: str) -> str:
    return prefix if path == TOP else f"{path}{PREFIX_SEP}{prefix}"


def _split_candidates(found: dict[str, dict], target: Optional[dict]) -> dict[str, dict]:
    """``found`` with every multi-network state_dict replaced by its prefix groups (kept whole
    when it is itself what the target module loads)."""
    out: dict[str, dict] = {}
    for path, state in found.items():
        groups = split_by_prefix(state)
        if not groups or (target and shapes(strip_prefixes(state)) == target):
            out[path] = state
            continue
        for prefix, sub in groups.items():
            out[_group_name(path, prefix)] = sub
    return out


def shapes(state: dict) -> dict:
    """key -> shape, what a state_dict must match to load into a module."""
    return {k: tuple(v.shape) for k, v in state.items()}


def _parts(path: str) -> list[str]:
    return [p for p in re.split(r"[.:]", path) if p]


def _last(path: str) -> str:
    parts = _parts(path)
    return parts[-1] if parts else path


def _describe(path: str) -> str:
    ema = " (EMA weights)" if _EMA.search(_last(path)) else ""
    if path.endswith("."):  # a key-prefix group
        where, _, prefix = path.rpartition(PREFIX_SEP)
        return (f"key '{where}', " if where else "") + f"keys prefixed '{prefix}'{ema}"
    return f"key '{path}'{ema}"


def select_state_dict(obj: Any, where: Path, key: Optional[str] = None,
                      target: Optional[dict] = None) -> Selected:
    """The generator's state_dict in ``obj`` (see the module doc); ``target``: key -> shape of
    the state_dict of the module it will be loaded into, when known."""
    whole = candidates(obj)
    found = _split_candidates(whole, target)
    if key is not None:
        chosen = found.get(key, whole.get(key))
        if chosen is None:
            have = ", ".join(found) or "none"
            raise CheckpointError(f"'{where}' has no state_dict under --checkpoint-key '{key}' "
                                  f"(state_dicts found under: {have})")
        return Selected(strip_prefixes(chosen), key, _describe(key))
    if not found:
        what = f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"'{where}' does not contain a state_dict (a dict of tensors; it holds {what}); "
                              "save one with torch.save(model.state_dict(), path)")
    if TOP in found:
        return Selected(strip_prefixes(found[TOP]), None, "")
    pool = list(found)
    if len(pool) > 1:
        pool = [p for p in pool if not any(_NOT_GENERATOR.search(part) for part in _parts(p))] or pool
    if len(pool) > 1 and target:
        matching = [p for p in pool if shapes(strip_prefixes(found[p])) == target]
        pool = matching or pool
    if len(pool) > 1:
        ema = [p for p in pool if _EMA.search(_last(p))]
        if len(ema) == 1:
            return Selected(strip_prefixes(found[ema[0]]), ema[0],
                            f"{_describe(ema[0])}, preferred over {', '.join(repr(p) for p in pool if p != ema[0])}")
    if len(pool) > 1:
        grouped = " (KEY:PREFIX = the keys of KEY that start with PREFIX)" if any(p.endswith(".") for p in found) else ""
        raise CheckpointError(f"'{where}' holds several state_dicts ({', '.join(found)}){grouped}; choose one with "
                              f"--checkpoint-key KEY (API: checkpoint_key=), e.g. --checkpoint-key {pool[0]}")
    return Selected(strip_prefixes(found[pool[0]]), pool[0], _describe(pool[0]))
