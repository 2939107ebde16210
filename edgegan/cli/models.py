"""`edgegan models`: the zoo with parameter counts and shipped weights."""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from ..models.loading import build_family
    from ..models.stats import parameter_count
    from ..models.zoo import ZOO

    rows = []
    for name, entry in ZOO.items():
        module, cfg, spec = build_family(entry.family, entry.config)
        rows.append({
            "name": name, "family": entry.family, "params": parameter_count(module),
            "input": [*spec.shape], "weights": entry.weights or "random init", "description": entry.description,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="edgegan model zoo")
    for col in ("name", "family", "params", "input", "weights", "description"):
        table.add_column(col, justify="right" if col == "params" else "left")
    for r in rows:
        table.add_row(r["name"], r["family"], f"{r['params']:,}", "x".join(map(str, r["input"])), r["weights"], r["description"])
    Console().print(table)
    return 0
