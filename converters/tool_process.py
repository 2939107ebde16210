"""Running a converter's tool or worker in a child process: the environment it gets, the line
of its output that says why it failed, and the one way a worker job is run (written as JSON,
run under the process guard so its whole tree dies with edgegan, artifact and report read back
or removed)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ..errors import ConversionError, strip_ansi
from ..util.procs import die_with_parent, guarded
from ..util.text import one_line


def tool_env() -> dict:
    """The child's environment: this venv's scripts first on PATH, TF quiet, no GPU probing."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def last_error(text: str) -> str:
    """The most telling line of a failed tool's output, whole (util.text.one_line: never cut
    mid-word; only a line over a thousand characters is shortened, at a word boundary)."""
    lines = [ln.strip() for ln in strip_ansi(text).splitlines()]
    for pattern in (r"^\w*Error: .+", r"ERROR: .*(onnx_op_name|op_type).*", r"ERROR: .+"):
        hits = [i for i, ln in enumerate(lines) if re.search(pattern, ln) and "trace log" not in ln]
        if hits:
            return one_line(_with_detail(lines, hits[-1]))
    tail = [ln for ln in lines if ln]
    return one_line(tail[-1]) if tail else "no output"


def _with_detail(lines: list, i: int) -> str:
    """A Keras "Exception encountered when calling layer ..." line says where, not why: add the
    paragraph after it (up to TF's node dump) and the ONNX node onnx2tf names."""
    line = lines[i]
    if "Exception encountered when calling layer" not in line:
        return line
    rest = next((ln for ln in lines[i + 1 :] if ln), "")
    if rest and not rest.startswith(("Call arguments", "File ", "ERROR:", "Traceback")):
        line = f"{line.rstrip('.')}: {rest.split(' for ' + chr(39) + '{{node')[0]}"
    node = next((ln.split("onnx_op_name:", 1)[1].strip() for ln in lines if "onnx_op_name:" in ln), None)
    return f"{line} (ONNX node {node})" if node else line


def run_worker(module: str, job: dict, job_path: Path, what: str, timeout: float,
               require_report: bool = False) -> dict:
    """``python -m module job_path``: the worker writes ``job['out']`` and, optionally, a report
    next to the job (``NAME.report.json``). Returns the report ({} when there is none); on a
    failure or timeout removes the partial artifact and raises ConversionError naming ``what``."""
    out = Path(job["out"])
    job_path.write_text(json.dumps(job))
    try:
        proc = subprocess.run(guarded([sys.executable, "-m", module, str(job_path)]), env=tool_env(),
                              capture_output=True, text=True, timeout=timeout, preexec_fn=die_with_parent)
    except subprocess.TimeoutExpired:
        out.unlink(missing_ok=True)
        raise ConversionError(f"{what} timed out after {timeout} s") from None
    report = job_path.with_suffix(".report.json")
    if proc.returncode != 0 or not out.exists() or (require_report and not report.exists()):
        out.unlink(missing_ok=True)
        raise ConversionError(f"{what} failed: {last_error(proc.stderr + proc.stdout)}")
    return json.loads(report.read_text()) if report.exists() else {}
