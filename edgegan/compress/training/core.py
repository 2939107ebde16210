"""The training loop every compress-by-training method shares.

A method builds a :class:`TrainingTask` (its trainable modules, their optimizers and one
``step(generator) -> losses``) and hands it to :func:`run_training`, which owns what all
methods need the same way:

* determinism: every random draw of a step comes from one seeded ``torch.Generator`` (plus the
  global torch RNG, seeded once), and both states travel in the checkpoint, so a run resumed
  from a checkpoint ends bit-identical to an uninterrupted one on CPU;
* a training state file (``state.pt`` in ``work_dir``) every ``save_every`` steps and at the
  end: modules, optimizers, RNG states, the step, the loss history and the wall time, plain
  tensors and JSON-like values only (``torch.load(weights_only=True)`` reads it);
* ``resume``: continue from that file; a file written under another config is refused;
* Ctrl-C (SIGINT) finishes the current step, writes the state file and raises
  :class:`TrainingInterrupted` (rerun with ``resume`` to continue);
* ``training.json`` in ``work_dir``: losses per step, wall time, params and MACs of teacher
  and student;
* progress: a callback set with :func:`progress_to` (the CLI renders it with rich; library code
  prints nothing).
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol

from ...config import JsonConfig
from ...errors import CheckpointError, ConfigError, EdgeganError

STATE_FORMAT = "edgegan-training-state"
STATE_SCHEMA_VERSION = 1
STATE_FILENAME = "state.pt"
RECORD_FILENAME = "training.json"
# config fields that may differ between a run and its resumption (they do not change the math)
# (threads may change float reduction order: resume with the same threads for bit-identical results)
RUNTIME_FIELDS = ("steps", "resume", "work_dir", "save_every", "threads")

ProgressCallback = Callable[[int, int, dict], None]
_PROGRESS: contextvars.ContextVar[Optional[ProgressCallback]] = contextvars.ContextVar("edgegan_training_progress",
                                                                                       default=None)


class TrainingInterrupted(EdgeganError):
    """Ctrl-C during training: the state at the last finished step was saved."""

    exit_code = 130


@dataclasses.dataclass
class TrainingConfig(JsonConfig):
    """Fields every training method has (``edgegan compress --steps --batch --lr --seed ...``)."""

    steps: int = dataclasses.field(default=500, metadata={"help": "optimisation steps"})
    batch: int = dataclasses.field(default=64, metadata={"help": "samples per step"})
    lr: float = dataclasses.field(default=2e-4, metadata={"help": "Adam learning rate (betas 0.5, 0.999)"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of the student's init and of every random draw"})
    save_every: int = dataclasses.field(default=100, metadata={
        "help": "write the training state every N steps (and at the end; needs --work-dir)"})
    work_dir: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "folder for the training state (state.pt) and training.json (CLI default: OUT.training next to --out)"})
    resume: bool = dataclasses.field(default=False, metadata={
        "help": "continue from WORK_DIR/state.pt (written by the same config)"})
    data: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "training images: 'digits', an .npz or a folder of images (methods that need real data)"})
    threads: int = dataclasses.field(default=1, metadata={
        "help": "torch CPU threads while training (small convs run fastest on one)"})

    def validate(self) -> None:
        for key in ("steps", "batch", "save_every", "threads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}", field=key)
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}", field="lr")

    def identity(self) -> dict:
        """The fields a resumed run must share with the run that wrote the state."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}


class TrainingTask(Protocol):
    """What a method gives the loop. ``modules``/``optimizers``: everything with state that
    changes during training (saved and restored by name); ``step`` does one update using only
    ``generator`` (and the global torch RNG) for randomness and returns the losses as floats."""

    modules: dict
    optimizers: dict

    def step(self, generator: Any) -> dict[str, float]: ...


@dataclasses.dataclass
class TrainingResult:
    """What a finished run hands back to the method (for its compression record)."""

    steps: int
    losses: list[dict]
    wall_seconds: float
    resumed_from: Optional[int]
    state_path: Optional[str]
    record_path: Optional[str]

    def summary(self, last: int = 20) -> dict:
        """Mean of each loss over the first and the last ``last`` steps (plain JSON)."""
        def mean(rows: list[dict]) -> dict:
            keys = rows[0].keys() if rows else []
            return {k: round(sum(r[k] for r in rows) / len(rows), 6) for k in keys}

        return {"steps": self.steps, "wall_seconds": round(self.wall_seconds, 2), "resumed_from": self.resumed_from,
                f"first_{last}_mean": mean(self.losses[:last]), f"last_{last}_mean": mean(self.losses[-last:]),
                "training_json": self.record_path}


@contextlib.contextmanager
def progress_to(callback: ProgressCallback) -> Iterator[None]:
    """Within the block, training calls ``callback(step, total, losses)`` after every step."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@contextlib.contextmanager
def _sigint_sets(flag: dict) -> Iterator[None]:
    """SIGINT sets ``flag["stop"]`` instead of raising mid-step (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if flag.get("stop"):  # a second Ctrl-C: the user really wants out
            raise KeyboardInterrupt
        flag["stop"] = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    from ...util.files import temp_path_beside

    tmp = temp_path_beside(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _atomic_write_text(text: str, path: Path) -> None:
    from ...util.files import temp_path_beside

    tmp = temp_path_beside(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _state(method: str, config: TrainingConfig, task: TrainingTask, generator: Any, step: int,
           losses: list[dict], wall: float) -> dict:
    import torch

    return {
        "format": STATE_FORMAT, "schema_version": STATE_SCHEMA_VERSION, "method": method,
        "config": config.identity(), "step": step, "wall_seconds": wall, "losses": losses,
        "modules": {k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in task.modules.items()},
        "optimizers": {k: o.state_dict() for k, o in task.optimizers.items()},
        "torch_rng": torch.get_rng_state(), "generator": generator.get_state(),
    }


def load_state(path: Path, method: str, config: TrainingConfig) -> dict:
    """The training state at ``path``, checked to come from ``method`` under ``config``."""
    import torch

    if not path.is_file():
        raise ConfigError(f"nothing to resume: '{path}' does not exist; drop --resume to start a new run", field="resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one checkpoint error
        raise CheckpointError(f"cannot read training state '{path}' ({type(exc).__name__}); delete it and start "
                              "again without --resume") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"'{path}' is not an edgegan training state; point --work-dir at the folder of the run "
                              "to resume")
    if state.get("method") != method:
        raise ConfigError(f"'{path}' was written by method '{state.get('method')}', not '{method}'; resume it with "
                          f"--method {state.get('method')} or choose another --work-dir", field="resume")
    theirs, ours = state.get("config") or {}, config.identity()
    differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    if differ:
        show = ", ".join(f"{k}={theirs.get(k)!r} there vs {ours.get(k)!r} now" for k in differ)
        raise ConfigError(f"cannot resume '{path}': it was written under another config ({show}); use the same "
                          "options or another --work-dir", field="resume")
    return state


def _restore(state: dict, task: TrainingTask, generator: Any, path: Path) -> None:
    import torch

    try:
        for k, m in task.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in task.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        torch.set_rng_state(state["torch_rng"])
        generator.set_state(state["generator"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"training state '{path}' does not fit this run ({type(exc).__name__}); start again "
                              "without --resume or use another --work-dir") from None


def write_record(path: Path, method: str, config: TrainingConfig, result: TrainingResult, models: dict) -> None:
    """``training.json``: config, per-step losses, wall time, params/MACs of teacher and student."""
    record = {"schema_version": 1, "method": method, "config": config.to_dict(), "models": models,
              "steps": result.steps, "wall_seconds": round(result.wall_seconds, 3),
              "resumed_from": result.resumed_from, "losses": result.losses}
    _atomic_write_text(json.dumps(record, indent=1) + "\n", path)


def run_training(method: str, config: TrainingConfig, task: TrainingTask,
                 models_info: Optional[dict] = None) -> TrainingResult:
    """Train ``task`` for ``config.steps`` steps (resuming from ``work_dir/state.pt`` when
    ``config.resume``); returns the loss history. Modules are left in train mode."""
    import torch

    work = Path(config.work_dir) if config.work_dir else None
    state_path = work / STATE_FILENAME if work else None
    generator = torch.Generator().manual_seed(config.seed)
    losses: list[dict] = []
    start, wall, resumed_from = 0, 0.0, None
    if config.resume:
        if state_path is None:  # checked here, not in validate(): the CLI fills work_dir in after parsing
            raise ConfigError("resume needs work_dir: the folder whose state.pt to continue from", field="resume")
        state = load_state(state_path, method, config)
        _restore(state, task, generator, state_path)
        start, wall, losses = int(state["step"]), float(state["wall_seconds"]), list(state["losses"])
        resumed_from = start
    elif work is not None:
        try:
            work.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create work_dir '{work}' ({exc.strerror}); choose a writable --work-dir",
                              field="work_dir") from None
    for m in task.modules.values():
        m.train()
    callback = _PROGRESS.get()
    flag: dict = {}
    step = start
    t0 = time.perf_counter()

    def save() -> None:
        if state_path is not None:
            _atomic_save(_state(method, config, task, generator, step, losses, wall + time.perf_counter() - t0),
                         state_path)

    with _sigint_sets(flag):
        while step < config.steps:
            row = task.step(generator)
            step += 1
            losses.append({k: float(v) for k, v in row.items()})
            if callback is not None:
                callback(step, config.steps, losses[-1])
            if step % config.save_every == 0 or step == config.steps:
                save()
            if flag.get("stop"):
                if step % config.save_every and step != config.steps:
                    save()
                where = f"state saved to '{state_path}'; rerun with --resume to continue" if state_path else \
                    "no state saved (no --work-dir)"
                raise TrainingInterrupted(f"{method} training stopped at step {step}/{config.steps}; {where}")
    result = TrainingResult(step, losses, wall + time.perf_counter() - t0, resumed_from,
                            str(state_path) if state_path else None,
                            str(work / RECORD_FILENAME) if work else None)
    if work is not None:
        write_record(work / RECORD_FILENAME, method, config, result, models_info or {})
    return result


def frozen(module: Any) -> Any:
    """``module`` in eval mode with no parameter requiring grad (a teacher, or a finished student)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def finetune_config(config: Any) -> Any:
    """The fine-tune phase after pruning: ``config.finetune_steps`` steps with its state in
    ``work_dir/finetune``, resumed only when that phase left a state there (a resumed first
    phase does not make a fresh fine-tune resume)."""
    ft = dataclasses.replace(config, steps=config.finetune_steps,
                             work_dir=str(Path(config.work_dir) / "finetune") if config.work_dir else None)
    return dataclasses.replace(ft, resume=bool(ft.resume and ft.work_dir and
                                              (Path(ft.work_dir) / STATE_FILENAME).is_file()))


def params_and_macs(module: Any, example: Any) -> dict:
    """Parameter count and MACs of one sample (``example``: numpy batch) of ``module`` in eval mode."""
    from ...models.stats import count_macs, parameter_count

    was_training = module.training
    module.eval()
    try:
        return {"params": parameter_count(module), "macs": count_macs(module, example)}
    finally:
        module.train(was_training)
