"""`edgegan models`: the zoo with parameter counts and shipped weights, and the registered
architecture families (built-in and from plugins)."""
from __future__ import annotations

import argparse
import dataclasses
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--families", action="store_true",
                   help="list the architecture families (config fields, whether they can be channel-pruned)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def zoo_rows() -> list[dict]:
    """One row per zoo entry; an entry whose family cannot be built (e.g. a broken plugin) gets
    its reason instead of a parameter count."""
    from ..errors import first_line
    from ..models.loading import build_family
    from ..models.stats import parameter_count
    from ..models.zoo import ZOO

    rows = []
    for name, entry in ZOO.items():
        row = {"name": name, "family": entry.family, "params": None, "input": None,
               "weights": entry.weights or "random init", "description": entry.description}
        try:
            module, _, spec = build_family(entry.family, entry.config)
            row.update(params=parameter_count(module), input=[*spec.shape])
        except Exception as exc:  # noqa: BLE001 - one bad (plugin) family must not hide the zoo
            row["description"] += f" (cannot build: {first_line(exc, 120)})"
        rows.append(row)
    return rows


def family_rows() -> list[dict]:
    from ..models.zoo import FAMILIES

    return [{"name": name, "config": fam.config_cls.__name__,
             "fields": [f.name for f in dataclasses.fields(fam.config_cls)],
             "channel_prunable": fam.channel_layout is not None, "description": fam.description,
             "origin": FAMILIES.origin(name)}
            for name, fam in FAMILIES.items()]


def run(args: argparse.Namespace) -> int:
    rows = family_rows() if args.families else zoo_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not args.families:
        table = Table(title="edgegan model zoo")
        for col in ("name", "family", "params", "input", "weights", "description"):
            table.add_column(col, justify="right" if col == "params" else "left")
        for r in rows:
            table.add_row(r["name"], r["family"], "–" if r["params"] is None else f"{r['params']:,}",
                          "x".join(map(str, r["input"] or [])) or "–", r["weights"], r["description"])
        console.print(table)
    table = Table(title="architecture families (registered; plugins included)")
    for col in ("family", "from", "config fields", "channel-prune", "description"):
        table.add_column(col)
    for r in family_rows():
        table.add_row(r["name"], r["origin"], ", ".join(r["fields"]), "yes" if r["channel_prunable"] else "no",
                      r["description"])
    console.print(table)
    return 0
