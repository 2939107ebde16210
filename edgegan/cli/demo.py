"""`edgegan demo KIND BUNDLE ...`: the demos users start from. Each kind lives in its own module
under `edgegan.demos` exposing ``add_arguments(parser)`` and ``run(args) -> int``; a kind whose
module is not installed is not offered."""
from __future__ import annotations

import argparse
import importlib
import importlib.util

# kind -> (module, one-line help)
DEMOS: dict[str, tuple[str, str]] = {
    "pi": ("edgegan.demos.pi", "deploy a live sample gallery service to an ARM board over ssh"),
    "phone": ("edgegan.demos.phone", "serve the phone demo page (in-browser runtime) for a phone over adb reverse or Wi-Fi"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in DEMOS.items() if importlib.util.find_spec(v[0]) is not None}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="demo_kind", metavar="KIND", required=True)
    for kind, (mod, help_) in _available().items():
        importlib.import_module(mod).add_arguments(sub.add_parser(kind, help=help_, description=help_))


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(DEMOS[args.demo_kind][0]).run(args)
