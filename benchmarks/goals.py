"""The goal lines the benchmark scripts print under their tables (one format for all of them):
``<what>: <measured> -> goal (<target>) MET|NOT MET``. Imported by sibling scripts, which run
with benchmarks/ on sys.path."""
from __future__ import annotations

from pathlib import Path


class Goals:
    """Goal lines collected while a benchmark runs, printed together at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def check(self, subject: str, measured: str, target: str, ok: bool) -> bool:
        self.lines.append(f"{subject}: {measured} -> goal ({target}) {'MET' if ok else 'NOT MET'}")
        return ok

    def print(self, bundles: Path) -> None:
        print("\n".join(self.lines))
        print(f"\nbundles in {bundles}")
