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


def _torch_missing() -> str | None:
    """Why parameter counts cannot be shown (None when torch imports)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return "parameter counts need torch: pip install 'edgegan[torch]'"
    return None


def zoo_rows() -> list[dict]:
    """One row per zoo entry. Names, inputs and weights come from the torch-free configs; the
    parameter count (a meta-device build) only when torch is installed. An entry whose family
    cannot be built (e.g. a broken plugin) gets its reason instead of a parameter count."""
    from ..errors import first_line
    from ..models.zoo import FAMILIES, ZOO

    no_torch = _torch_missing()
    rows = []
    for name, entry in ZOO.items():
        row = {"name": name, "family": entry.family, "params": None, "input": None,
               "weights": entry.weights or "random init", "description": entry.description}
        try:
            fam = FAMILIES.get(entry.family)
            cfg = fam.config_cls.from_dict(entry.config)
            row["input"] = [*fam.input_spec(cfg).shape]
            if no_torch is None:
                import torch

                with torch.device("meta"):  # count without allocating weights
                    row["params"] = int(sum(p.numel() for p in fam.build(cfg).parameters()))
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
    from .render import table_console

    print_tables(None if args.families else rows, family_rows(), table_console())
    return 0


def print_tables(rows: list[dict] | None, fams: list[dict], console) -> None:
    """The zoo table (unless ``rows`` is None) and the families table at ``console``'s width:
    full values at any width, columns dropped (highest order first), never cut."""
    from rich.markup import escape

    from .render import fitted_table, print_dropped

    if rows is not None:
        cols = [("name", "left", 0), ("family", "left", 4), ("params", "right", 0), ("input", "left", 2),
                ("weights", "left", 3), ("description", "left", 9)]
        cells = [[escape(r["name"]), escape(r["family"]), "–" if r["params"] is None else f"{r['params']:,}",
                  "x".join(map(str, r["input"] or [])) or "–", escape(r["weights"]), escape(r["description"])]
                 for r in rows]
        table, dropped = fitted_table("edgegan model zoo", cols, cells, console.width)
        console.print(table)
        if "description" in dropped:  # prose wraps below the table instead
            dropped.remove("description")
            for r in rows:
                console.print(f"[bold]{escape(r['name'])}[/]: {escape(r['description'])}")
        print_dropped(console, dropped)
        if _torch_missing():
            console.print(escape(_torch_missing()))
    cols = [("family", "left", 0), ("from", "left", 3), ("config fields", "left", 8), ("channel-prune", "left", 4),
            ("description", "left", 9)]
    cells = [[escape(r["name"]), escape(r["origin"]), escape(", ".join(r["fields"])),
              "yes" if r["channel_prunable"] else "no", escape(r["description"])] for r in fams]
    table, dropped = fitted_table("architecture families (registered; plugins included)", cols, cells, console.width)
    console.print(table)
    print_dropped(console, dropped)
