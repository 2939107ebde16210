"""`edgegan setup tflite`: install the tools pip cannot install through an extra.

A verb of its own rather than an option of `env`: `env` only reports, this one changes the
environment (like `playwright install`). Idempotent: when every pinned tool is already there it
installs nothing and says so.
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..util.toolsets import TOOLSETS

    p.add_argument("toolset", choices=sorted(TOOLSETS),
                   help="tflite: onnx2tf 1.29.x and its helpers, installed with pip --no-deps (their "
                        "metadata pins old TF/numpy/onnx) into this Python's environment")
    p.add_argument("--check", action="store_true",
                   help="install nothing; exit 0 when the tools are installed, 9 when some are missing")
    p.add_argument("--wheels", metavar="DIR",
                   help="install from the wheel files in DIR only, no package index (offline machines)")


def run(args: argparse.Namespace) -> int:
    import sys

    from ..errors import MissingDependencyError
    from ..util.toolsets import install, plan

    p = plan(args.toolset)
    todo = p.to_install
    where = sys.prefix
    if args.check:
        missing = [*p.missing_prerequisites, *map(str, todo)]
        if missing:
            fix = (f"pip install 'edgegan[{p.extra}]' and run " if p.missing_prerequisites else "") + \
                f"`edgegan setup {args.toolset}`"
            raise MissingDependencyError(f"{args.toolset} tools incomplete here ({where}): missing "
                                         f"{', '.join(missing)}; install with: {fix}")
        print(f"{args.toolset} tools: all {len(p.rows)} installed ({where})")
        return 0
    if not todo and not p.missing_prerequisites:
        print(f"{args.toolset} tools: all {len(p.rows)} already installed; nothing to do ({where})")
        return 0
    if todo and not p.missing_prerequisites:  # else install() stops with the one-line reason
        have = {str(r): v for r, v in p.rows}
        print(f"installing {len(todo)} {args.toolset} tool(s) with pip --no-deps into {where}: "
              + ", ".join(str(r) + (f" (replacing {have[str(r)]})" if have[str(r)] else "") for r in todo),
              flush=True)
    done = install(p, pip_args=["--no-index", "--find-links", args.wheels] if args.wheels else ())
    print(f"{args.toolset} tools: installed {len(done)}, {len(p.rows) - len(done)} already there")
    return 0
