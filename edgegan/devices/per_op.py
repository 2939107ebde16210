"""Per-op profile of an ExecuTorch program (.pte): which ops take the time, and whether each
runs inside the XNNPACK delegate or on a portable (reference) kernel.

Why: ExecuTorch leaves ops it cannot delegate (reflect pad, InstanceNorm) on float portable
kernels between delegate calls, and those decide whether an int8 .pte is fast. The capture
uses ETDump (the runtime's event tracer) through the full ``executorch`` package's pybindings,
which import torch: it runs on this host, not on a board that only has the torch-free
``executorch-numpy-runtime`` (that runtime has no event tracer). Times are therefore this
host's; a device row says so (``captured_on``).

The capture runs in a child process: an ETDump debug buffer that is too small makes the
runtime abort the whole process, and a crash there must not take the profile run with it.
The debug buffer (intermediate outputs, for numeric debugging) is sized from the program's
own tensors (:func:`debug_buffer_bytes`), never a constant.

    python -m edgegan.devices.per_op JOB.json     # the child (internal)
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import platform
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..config import JsonConfig
from ..errors import ArtifactRunError, ConfigError, MissingDependencyError, ResultsError

log = logging.getLogger(__name__)

PER_OP_SCHEMA = "edgegan.per_op/1"
PER_OP_RUNTIMES = ("executorch",)  # runtimes (the runner's table) whose artifacts get a per-op profile
KINDS = ("portable", "delegate", "delegated")  # portable kernel | a delegate call | an op inside a delegate
# ETDump event names that are bookkeeping around an op, not an op
_WRAPPERS = {"OPERATOR_CALL", "Method::execute", "Method::init", "Program::load_method"}
_ALIGN = 64  # bytes the ETDump data sink aligns each logged tensor to (upper bound used for sizing)
_SLACK = 1 << 16


@dataclasses.dataclass
class OpTiming(JsonConfig):
    """One op, all its occurrences in one inference. ``total_ms`` is per inference: the sum over
    the occurrences of each one's mean over the timed runs (means, so the ops of one inference
    add up to at most its Method::execute mean)."""

    op: str
    kind: str
    backend: Optional[str] = None
    count: int = 0
    total_ms: float = 0.0
    mean_ms: float = 0.0
    share: Optional[float] = None  # of the mean Method::execute time

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"OpTiming.kind {self.kind!r} is not one of {KINDS}", field="kind")


@dataclasses.dataclass
class ProgramOps(JsonConfig):
    """What the .pte's instruction list says will run, before anything runs: portable kernel
    calls per op and delegate calls per backend (the counts the measured ranking must match)."""

    kernel_calls: dict = dataclasses.field(default_factory=dict)
    delegate_calls: dict = dataclasses.field(default_factory=dict)
    planned_bytes: int = 0

    @property
    def portable_count(self) -> int:
        return sum(self.kernel_calls.values())

    @property
    def delegate_count(self) -> int:
        return sum(self.delegate_calls.values())


@dataclasses.dataclass
class PerOpProfile(JsonConfig):
    """per_op.json: the ranked ops of one .pte (ops: portable kernels and delegate calls, which
    add up to the inference; delegated_ops: the ops inside the delegate calls, as the backend's
    own profiler names them)."""

    format: str
    artifact: str
    artifact_sha256: Optional[str] = None
    captured_on: str = "host"
    host: str = ""
    runtime: str = ""
    runs: int = 0
    warmup: int = 0
    threads: int = 1
    execute_ms: Optional[float] = None
    ops: list[OpTiming] = dataclasses.field(default_factory=list)
    delegated_ops: list[OpTiming] = dataclasses.field(default_factory=list)
    program: ProgramOps = dataclasses.field(default_factory=ProgramOps)
    debug_buffer_bytes: Optional[int] = None
    outputs_captured: Optional[int] = None
    etrecord: Optional[str] = None
    note: str = ""
    schema: str = PER_OP_SCHEMA

    def validate(self) -> None:
        if self.schema != PER_OP_SCHEMA:
            raise ConfigError(f"PerOpProfile.schema {self.schema!r} is not {PER_OP_SCHEMA!r}", field="schema")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["ops"] = [o.to_dict() for o in self.ops]
        out["delegated_ops"] = [o.to_dict() for o in self.delegated_ops]
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PerOpProfile":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, ConfigError) as exc:
            raise ResultsError(f"'{path}' is not a valid per-op profile ({str(exc)[:200]}); rerun profile --per-op") from None

    def top(self, n: int = 10) -> list[OpTiming]:
        return self.ops[:n]


# ---------------------------------------------------------------------------- the program
def _require_executorch() -> None:
    try:
        import executorch.exir  # noqa: F401
        from executorch.devtools import Inspector  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"per-op profiles of .pte files need the full executorch package on this host ({exc.name or exc} "
            "missing); pip install executorch (the [executorch] extra)") from None


def _plan(pte: Path):
    from executorch.exir._serialize._program import deserialize_pte_binary

    try:
        program = deserialize_pte_binary(pte.read_bytes()).program
    except Exception as exc:  # noqa: BLE001 - flatbuffer parse errors have no common type
        raise ArtifactRunError(f"{pte.name} is not a readable ExecuTorch program ({str(exc)[:160]}); re-export it") from None
    plans = [p for p in program.execution_plan if p.name == "forward"] or list(program.execution_plan)
    if not plans:
        raise ArtifactRunError(f"{pte.name} has no method to run; re-export it")
    return plans[0]


def _tensor_bytes(t) -> int:
    from executorch.exir.scalar_type import ScalarType

    wide = {ScalarType.LONG: 8, ScalarType.DOUBLE: 8, ScalarType.COMPLEX64: 8, ScalarType.COMPLEX128: 16}
    narrow = {ScalarType.BYTE: 1, ScalarType.CHAR: 1, ScalarType.BOOL: 1, ScalarType.QUINT8: 1, ScalarType.QINT8: 1,
              ScalarType.SHORT: 2, ScalarType.HALF: 2, ScalarType.BFLOAT16: 2}
    size = wide.get(t.scalar_type, narrow.get(t.scalar_type, 4))
    return int(math.prod(t.sizes)) * size if t.sizes else size


def program_ops(pte: str | Path) -> ProgramOps:
    """Portable kernel calls and delegate calls of ``pte``'s forward method, from its
    instruction list (no run)."""
    from executorch.exir import schema

    plan = _plan(Path(pte))
    kernels: dict[str, int] = defaultdict(int)
    delegates: dict[str, int] = defaultdict(int)
    for ins in plan.chains[0].instructions if plan.chains else []:
        a = ins.instr_args
        if isinstance(a, schema.KernelCall):
            op = plan.operators[a.op_index]
            kernels[_kernel_name(op.name, op.overload)] += 1
        elif isinstance(a, schema.DelegateCall):
            delegates[plan.delegates[a.delegate_index].id] += 1
    planned = sum(int(s) for s in plan.non_const_buffer_sizes[1:])
    return ProgramOps(kernel_calls=dict(kernels), delegate_calls=dict(delegates), planned_bytes=planned)


def debug_buffer_bytes(pte: str | Path, runs: int = 1) -> int:
    """Bytes an ETDump debug buffer needs to hold every instruction's intermediate outputs for
    ``runs`` inferences of ``pte``: an upper bound from the program itself (each instruction
    logs at most the non-constant tensors it touches, each aligned), never a fixed size."""
    from executorch.exir import schema

    plan = _plan(Path(pte))
    per_run = 0
    for ins in plan.chains[0].instructions if plan.chains else []:
        a = ins.instr_args
        if not isinstance(a, (schema.KernelCall, schema.DelegateCall)):
            continue
        for i in a.args:
            v = plan.values[i].val
            tensors = [v] if isinstance(v, schema.Tensor) else []
            if isinstance(v, schema.TensorList):
                tensors = [plan.values[j].val for j in v.items]
            per_run += sum(_tensor_bytes(t) + _ALIGN for t in tensors if isinstance(t, schema.Tensor))
    return per_run * max(1, runs) + _SLACK


def _kernel_name(name: str, overload: str) -> str:
    """``aten::abs`` + ``out`` -> ``aten::abs.out``."""
    return f"{name}.{overload}" if overload else name


# ---------------------------------------------------------------------------- the capture (child)
def _capture(job: dict) -> None:
    """Run in the child: timed runs with ETDump on (no debug buffer: copying outputs would skew
    the times), then, if asked, one run with a debug buffer that records intermediate outputs."""
    import torch  # noqa: F401 - the pybindings take torch tensors
    from executorch.extension.pybindings import portable_lib

    if hasattr(portable_lib, "_unsafe_reset_threadpool"):
        portable_lib._unsafe_reset_threadpool(int(job["threads"]))
    x = torch.from_numpy(np.load(job["input"]))
    mod = portable_lib._load_for_executorch(job["pte"], enable_etdump=True, debug_buffer_size=0)
    for _ in range(int(job["warmup"]) + int(job["runs"])):
        mod.run_method("forward", (x,))
    mod.write_etdump_result_to_file(job["etdump"], None)
    if job.get("debug_buffer_bytes"):
        mod = portable_lib._load_for_executorch(job["pte"], enable_etdump=True,
                                                debug_buffer_size=int(job["debug_buffer_bytes"]))
        mod.run_method("forward", (x,))
        mod.write_etdump_result_to_file(job["outputs_etdump"], job["debug_buffer"])


def _run_child(job: dict, work: Path, timeout_s: float) -> None:
    jp = work / "job.json"
    jp.write_text(json.dumps(job))
    try:
        proc = subprocess.run([sys.executable, "-m", "edgegan.devices.per_op", str(jp)], capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ArtifactRunError(f"per-op capture of {Path(job['pte']).name} took over {timeout_s:.0f} s; "
                               "lower --runs") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or "").splitlines() if ln.strip() and "cpuinfo" not in ln]
        tail = " | ".join(lines[-3:])[-400:] or "(no stderr)"
        what = "crashed" if proc.returncode < 0 else f"exited {proc.returncode}"
        raise ArtifactRunError(f"per-op capture of {Path(job['pte']).name} {what}: {tail}")


# ---------------------------------------------------------------------------- reading ETDump
def _inspector(etdump: Path, debug_buffer: Optional[Path] = None, etrecord: Optional[Path] = None):
    import warnings

    from executorch.devtools import Inspector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Output Buffer not found" when no debug buffer was asked for
        return Inspector(etdump_path=str(etdump), debug_buffer_path=str(debug_buffer) if debug_buffer else None,
                         etrecord=str(etrecord) if etrecord else None)


def _mean_ms(event, runs: int) -> Optional[float]:
    """The event's mean over the last ``runs`` executions (the earlier ones are warmup)."""
    pd = getattr(event, "perf_data", None)
    if pd is None or not pd.raw:
        return None
    return float(np.mean(np.asarray(pd.raw[-runs:], np.float64)))


_NUMBERED = re.compile(r"\s+#\d+$")


def rank_events(events, backends: dict[int, str], default_backend: Optional[str],
                runs: int) -> tuple[list, list, Optional[float]]:
    """(ops, delegated_ops, execute_ms) from the Inspector's events of one execute block.
    ``backends`` maps an instruction id to the delegate backend that instruction calls."""
    calls: dict[tuple, list[float]] = defaultdict(list)
    inner: dict[tuple, list[float]] = defaultdict(list)
    execute_ms = None
    for e in events:
        ms = _mean_ms(e, runs)
        if e.name == "Method::execute":
            execute_ms = ms
        if ms is None or e.name in _WRAPPERS:
            continue
        if e.is_delegated_op:
            backend = e.delegate_backend_name or backends.get(getattr(e, "_instruction_id", None)) or default_backend
            inner[(_NUMBERED.sub("", e.name), backend)].append(ms)
        elif e.name == "DELEGATE_CALL":
            backend = backends.get(getattr(e, "_instruction_id", None)) or default_backend
            calls[(f"{backend or 'delegate'} call", "delegate", backend)].append(ms)
        elif e.name.startswith("native_call_"):
            calls[("aten::" + e.name[len("native_call_"):], "portable", None)].append(ms)
        else:  # an event this version names differently: keep it, honestly labelled
            calls[(e.name, "portable", None)].append(ms)

    def rows(groups: dict, kind_of) -> list[OpTiming]:
        out = []
        for key, times in groups.items():
            total = float(sum(times))
            out.append(OpTiming(op=key[0], kind=kind_of(key), backend=key[-1], count=len(times), total_ms=total,
                                mean_ms=total / len(times),
                                share=(total / execute_ms) if execute_ms else None))
        return sorted(out, key=lambda r: -r.total_ms)

    return rows(calls, lambda k: k[1]), rows(inner, lambda k: "delegated"), execute_ms


def _instruction_backends(pte: Path) -> dict[int, str]:
    from executorch.exir import schema

    plan = _plan(pte)
    return {i: plan.delegates[ins.instr_args.delegate_index].id
            for i, ins in enumerate(plan.chains[0].instructions if plan.chains else [])
            if isinstance(ins.instr_args, schema.DelegateCall)}


def _execute_block(insp):
    blocks = [b for b in insp.event_blocks if any(e.name == "Method::execute" for e in b.events)]
    if not blocks:
        raise ArtifactRunError("the ETDump holds no Method::execute events; the capture did not run the model")
    return blocks[0]


def _check_counts(runs: int, threads: int, warmup: int) -> None:
    if runs < 1 or threads < 1 or warmup < 0:
        raise ConfigError(f"per-op runs, threads must be >= 1 and warmup >= 0, got {runs} / {threads} / {warmup}",
                          field="runs")


def _timed_job(pte: Path, inputs: np.ndarray, runs: int, threads: int, warmup: int, tmp: Path, work: Path) -> dict:
    """The child's job for the timed runs: the first input saved in ``tmp``, the ETDump in ``work``."""
    np.save(tmp / "input.npy", np.ascontiguousarray(np.asarray(inputs, np.float32)[:1]))
    return {"pte": str(pte.resolve()), "input": str(tmp / "input.npy"), "runs": runs, "warmup": warmup,
            "threads": threads, "etdump": str(work / "etdump.etdp")}


def instance_times(pte: str | Path, inputs: np.ndarray, runs: int = 200, threads: int = 2,
                   warmup: int = 20, timeout_s: float = 900.0) -> list[tuple[str, float, float]]:
    """Every op occurrence of one inference of ``pte`` in execution order, as (the runtime's
    event name with its occurrence number, mean ms, median ms over the timed runs): the
    per-layer view the ranked profile folds together (e.g. which of three Deconvolutions is slow,
    and how each scales with ``threads``). ETDump ticks are microseconds: an op under ~1 us
    reads 0 or 0.001 ms."""
    _require_executorch()
    _check_counts(runs, threads, warmup)
    with tempfile.TemporaryDirectory(prefix="edgegan-perop-") as tmp:
        work = Path(tmp)
        job = _timed_job(Path(pte), inputs, runs, threads, warmup, work, work)
        _run_child(job, work, timeout_s)
        out = []
        for e in _execute_block(_inspector(work / "etdump.etdp")).events:
            ms = _mean_ms(e, runs)
            if ms is None or e.name in _WRAPPERS:
                continue
            out.append((e.name, ms, float(np.median(np.asarray(e.perf_data.raw[-runs:], np.float64)))))
    return out


# ---------------------------------------------------------------------------- the entry point
def profile_pte(pte: str | Path, inputs: np.ndarray, fmt: str, runs: int = 20, threads: int = 2, warmup: int = 3,
                capture_outputs: bool = True, keep: Optional[Path] = None, etrecord: Optional[str | Path] = None,
                sha256: Optional[str] = None, timeout_s: float = 900.0) -> PerOpProfile:
    """Rank ``pte``'s ops by time on this host. ``inputs``: one input as the program takes it
    (batch 1, its own layout). ``capture_outputs`` adds one run that records every
    instruction's outputs in an ETDump debug buffer sized from the program; ``keep`` is a folder
    to leave the ETDump files in (next to per_op.json)."""
    _require_executorch()
    pte = Path(pte)
    _check_counts(runs, threads, warmup)
    program = program_ops(pte)
    buffer = debug_buffer_bytes(pte) if capture_outputs else None
    with tempfile.TemporaryDirectory(prefix="edgegan-perop-") as tmp:
        work = Path(keep) if keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        job = {**_timed_job(pte, inputs, runs, threads, warmup, Path(tmp), work), "debug_buffer_bytes": buffer,
               "outputs_etdump": str(work / "outputs.etdp"), "debug_buffer": str(work / "debug_buffer.bin")}
        outputs_failed = ""
        try:
            _run_child(job, Path(tmp), timeout_s)
        except ArtifactRunError as exc:
            if not (buffer and (work / "etdump.etdp").is_file()):
                raise
            outputs_failed = f"the intermediate-outputs run failed ({exc}); the times are complete"
            buffer = None
        rec = Path(etrecord) if etrecord and Path(etrecord).is_file() else None
        insp = _inspector(work / "etdump.etdp", etrecord=rec)
        backends = _instruction_backends(pte)
        default = next(iter(program.delegate_calls), None) if len(program.delegate_calls) == 1 else None
        ops, inner, execute_ms = rank_events(_execute_block(insp).events, backends, default, runs)
        captured = None
        if buffer:
            out_insp = _inspector(work / "outputs.etdp", work / "debug_buffer.bin")
            captured = sum(1 for e in _execute_block(out_insp).events if e.debug_data)
    from executorch.version import __version__ as et_version

    return PerOpProfile(
        format=fmt, artifact=pte.name, artifact_sha256=sha256, captured_on="host",
        host=f"{platform.machine()} {platform.node()}", runtime=f"executorch {et_version} (pybindings, ETDump)",
        runs=runs, warmup=warmup, threads=threads, execute_ms=execute_ms, ops=ops, delegated_ops=inner, program=program,
        debug_buffer_bytes=buffer, outputs_captured=captured, etrecord=str(rec) if rec else None,
        note="; ".join(n for n in (outputs_failed, "op names are the runtime's kernel names (no ETRecord to map "
                                   "them to the torch module)" if rec is None else "") if n))


if __name__ == "__main__":  # the capture child
    _capture(json.loads(Path(sys.argv[1]).read_text()))
