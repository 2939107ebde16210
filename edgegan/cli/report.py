"""`edgegan report PATH...`: one self-contained report.html for bundles, profile result folders
(several devices side by side), compare outputs and sweep folders."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="bundle folder, profile results folder(s), compare output folder, sweep folder (any mix)")
    p.add_argument("--out", type=Path, default=None,
                   help="HTML file to write (default: report.html in the first PATH's folder)")
    p.add_argument("--title", default=None, help="page title (default: from the model names)")


def run(args: argparse.Namespace) -> int:
    from ..reports.html_report import HTML_FILENAME, write_html_report

    first = Path(args.paths[0])
    out = args.out or ((first.parent if first.is_file() else first) / HTML_FILENAME)
    from .third_party_output import hold_back_third_party_output

    t0 = time.perf_counter()
    # a bundle's report re-runs its artifacts here: the runtimes' own chatter stays out of the terminal
    with hold_back_third_party_output(getattr(args, "verbose", False)):
        path = write_html_report(args.paths, out, args.title)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, {time.perf_counter() - t0:.1f} s); "
          "self-contained: open it in any browser, offline")
    return 0
