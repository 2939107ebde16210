"""`edgegan env`: which converters and runtimes work here, with versions."""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..converters import CONVERTERS
    from ..converters.base import module_version
    from ..runner.edgegan_runner import runtime_versions

    formats = [{"format": name, "runtime": c.runtime, "available": c.missing_dependency() is None,
                "reason": c.missing_dependency(), "description": c.description} for name, c in CONVERTERS.items()]
    tools = {d: module_version(d) for d in ("torch", "onnx", "onnxruntime", "onnxscript", "tensorflow-cpu",
                                           "onnx2tf", "onnxsim", "tf-keras", "ai-edge-litert", "numpy")}
    data = {"edgegan": __version__, "formats": formats, "tools": tools, "runtimes": runtime_versions()}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"edgegan {__version__}: formats")
    for c in ("format", "runtime", "available", "description"):
        t.add_column(c)
    for f in formats:
        t.add_row(f["format"], f["runtime"], "[green]yes[/]" if f["available"] else f"[red]no[/] ({f['reason']})",
                  f["description"])
    console.print(t)
    t2 = Table(title="tools and runtimes")
    t2.add_column("package")
    t2.add_column("version")
    for k, v in {**tools, **{f"runtime:{k}": v for k, v in data["runtimes"].items()}}.items():
        t2.add_row(k, v)
    console.print(t2)
    return 0
