"""`edgegan device setup|info|clean TARGET`: prepare a device's runner environment, describe it,
or remove what profiling cached on it.

The target options every device-facing verb shares are in ``edgegan.devices.target_args``.
"""
from __future__ import annotations

import argparse
import json

from ..devices.target_args import TARGET_HELP, add_target_arguments, target_options  # noqa: F401 (shared: profile, benchmark)
from ..util.text import split_csv


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("setup", help="create a venv on the device with numpy + the runtimes",
                       description="Create (or refresh) ~/.edgegan/venv on the device with numpy and the runtimes, "
                                   "pinned to this host's versions.")
    s.add_argument("target", help=TARGET_HELP)
    s.add_argument("--runtimes", type=split_csv, default=None,
                   help="comma-separated runtimes (onnxruntime, litert) or implementations (ai-edge-litert, "
                        "tflite-runtime); default: every runtime in the runner's table")
    s.add_argument("--requirements", type=split_csv, help="exact pip requirements instead of the defaults, e.g. numpy==2.4.6,...")
    s.add_argument("--wheels", help="offline board: push the .whl files in this folder and install from them")
    s.add_argument("--download-wheels", action="store_true",
                   help="offline board: pip download wheels here for the device's platform + python, then push them")
    s.add_argument("--index-url", help="package index the device should use (online install)")
    s.add_argument("--system-python", default="python3", help="the device's python used to create the venv")
    s.add_argument("--force", action="store_true", help="recreate the venv even if it is up to date")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    add_target_arguments(s)
    c = sub.add_parser("clean", help="remove edgegan's cached artifacts and run folders from the device",
                       description="Remove the artifacts, run folders and runner copies that profiling leaves in "
                                   "edgegan's folder on the device (the next profile pushes what it needs again); "
                                   "the setup venv stays unless --all.")
    c.add_argument("target", help=TARGET_HELP)
    c.add_argument("--all", action="store_true", dest="all_", help="also remove the setup venv (and the folder if "
                   "nothing else is in it)")
    c.add_argument("--json", action="store_true", help="print what was removed as JSON")
    add_target_arguments(c)
    i = sub.add_parser("info", help="arch, CPU, cores, memory, OS, python and runtime versions of the device")
    i.add_argument("target", help=TARGET_HELP)
    i.add_argument("--json", action="store_true", help="print DeviceInfo as JSON")
    add_target_arguments(i)


def _print_info(info: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    for k, v in info.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a} {b}" for a, b in v.items())
        elif isinstance(v, list):
            v = ", ".join(map(str, v)) or "none readable"
        t.add_row(k, "–" if v in (None, "") else str(v))
    Console().print(t)


def run(args: argparse.Namespace) -> int:
    if args.action == "clean":
        from ..devices.clean import clean_device

        result = clean_device(args.target, target_options(args), all_=args.all_)
        if args.json:
            print(json.dumps(result, indent=2))
            return 0
        from rich.console import Console
        from rich.markup import escape

        console = Console(highlight=False)
        for r in result["removed"]:
            size = f"{r['bytes']:,} bytes" if r["bytes"] is not None else "size unknown"
            console.print(f"removed {escape(r['path'])} ({size})")
        if not result["removed"]:
            console.print(f"nothing to clean in {escape(result['workdir'])} on {escape(result['target'])}")
        for path in result["kept"]:
            console.print(f"kept {escape(path)} (pass --all to remove it too)")
        console.print(f"freed {result['bytes_freed']:,} bytes on {escape(result['target'])}")
        return 0
    if args.action == "info":
        from ..devices.setup import device_info

        info = device_info(args.target, target_options(args)).to_dict()
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            _print_info(info, f"device {args.target}")
        return 0
    from ..devices.setup import SetupConfig, setup_device

    given = {"runtimes": args.runtimes} if args.runtimes is not None else {}  # the config owns the default
    cfg = SetupConfig(target=args.target, **given, requirements=args.requirements, wheels=args.wheels,
                      download_wheels=args.download_wheels, index_url=args.index_url,
                      system_python=args.system_python, force=args.force, target_options=target_options(args))
    if args.json:
        print(json.dumps(setup_device(cfg), indent=2))
        return 0
    from rich.console import Console

    console = Console()
    with console.status("setting up the device") as status:
        result = setup_device(cfg, progress=lambda msg: (status.update(msg), console.print(f"  {msg}")))
    console.print(f"[green]✔ {result['status']}[/] in {result['seconds']} s: {result['venv']}")
    _print_info(result["device"], f"device {args.target}")
    return 0
