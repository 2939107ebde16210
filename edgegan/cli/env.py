"""`edgegan env`: which converters and runtimes work here, with versions."""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..converters import CONVERTERS
    from ..converters.base import module_version, tool_distributions
    from ..runner.edgegan_runner import RUNTIMES, runtime_versions

    formats = []
    for name, c in CONVERTERS.items():
        missing = c.missing_dependency()
        formats.append({"format": name, "runtime": c.runtime, "available": missing is None, "reason": missing,
                        "description": c.description})
    tools = {d: module_version(d) for d in tool_distributions()}
    installed = runtime_versions()
    runtimes = [{"runtime": rt.name, "suffixes": list(rt.suffixes), "float_format": rt.float_format,
                 "implementations": rt.distributions(), "installed": rt.installed(installed),
                 "description": rt.description} for rt in RUNTIMES.values()]
    data = {"edgegan": __version__, "formats": formats, "tools": tools, "runtimes": installed,
            "runtime_table": runtimes}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    t = Table(title=f"edgegan {__version__}: formats")
    for c in ("format", "runtime", "available", "description"):
        t.add_column(c)
    for f in formats:
        t.add_row(f["format"], f["runtime"],
                  "[green]yes[/]" if f["available"] else f"[red]no[/] ({escape(f['reason'])})",  # '[all]' is text
                  escape(f["description"]))
    console.print(t)
    t3 = Table(title="runtimes (the runner's table)")
    for c in ("runtime", "artifacts", "float baseline", "installed here"):
        t3.add_column(c)
    for r in runtimes:
        t3.add_row(r["runtime"], " ".join(r["suffixes"]), r["float_format"],
                   escape(r["installed"] or f"no (install {' or '.join(r['implementations'])})"))
    console.print(t3)
    t2 = Table(title="tools and runtimes")
    t2.add_column("package")
    t2.add_column("version")
    for k, v in {**tools, **{f"runtime:{k}": v for k, v in data["runtimes"].items()}}.items():
        t2.add_row(escape(k), escape(str(v)))
    console.print(t2)
    return 0
