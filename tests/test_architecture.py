"""Layering rules, checked by reading the source (AST only: nothing here imports the code).

Why a test: the one-file device runner must run on a board with only numpy and a runtime;
library code must not reach up into the CLI; metrics must stay usable without the export and
device stacks; and package cycles make every later move (plugins, lazy API) harder. Imports
inside functions count: they still tie the packages together, only later.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Iterator, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "edgegan" / "runner" / "edgegan_runner.py"
# what the runner may import besides the standard library (it runs on the device)
RUNNER_THIRD_PARTY = {"numpy", "onnxruntime", "ai_edge_litert", "tflite_runtime", "tensorflow", "executorch"}

# Package cycles that exist today and are allowed for now, each with the reason and who removes
# it. Any other cycle fails; an entry whose cycle is gone fails too (delete it then).
# Cycles allowed for now (none): an entry here must name a real cycle, or a test fails.
KNOWN_CYCLES: list[tuple[str, str]] = []


class Import(NamedTuple):
    source: str      # importing module, e.g. edgegan.metrics.knn
    target: str      # absolute module imported, e.g. edgegan.export.onnx
    path: Path
    line: int


def module_name(path: Path) -> str:
    """Import name of a source file; ``converters/`` is installed as ``edgegan.converters``."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "converters":
        parts = ["edgegan", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def library_files() -> list[Path]:
    return sorted([*(ROOT / "edgegan").rglob("*.py"), *(ROOT / "converters").rglob("*.py")])


def imports_of(path: Path, known: set[str], code: str | None = None) -> Iterator[Import]:
    """Every import in ``path`` (top level, in functions, in TYPE_CHECKING blocks), resolved to
    absolute names; ``from pkg import sub`` yields ``pkg.sub`` when ``sub`` is a module.
    ``code`` stands in for the file's text (the self-checks below)."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    tree = ast.parse(path.read_text() if code is None else code, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield Import(source, target, path, node.lineno)
            for alias in node.names:
                if f"{target}.{alias.name}" in known:
                    yield Import(source, f"{target}.{alias.name}", path, node.lineno)


def all_imports() -> list[Import]:
    files = library_files()
    known = {module_name(p) for p in files}
    return [imp for p in files for imp in imports_of(p, known)]


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def where(imp: Import) -> str:
    return f"{imp.path.relative_to(ROOT)}:{imp.line} imports {imp.target}"


# ------------------------------------------------------------------------------ the rules
def runner_violations(path: Path = RUNNER) -> list[str]:
    """Imports of the device runner outside stdlib + numpy + the runtimes (relative ones too:
    the runner is copied to the device as one file)."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            bad.append(f"line {node.lineno}: relative import (the runner must stay one self-contained file)")
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("__import__", "import_module")):
            names = [node.args[0].value]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in RUNNER_THIRD_PARTY:
                bad.append(f"line {node.lineno}: imports {name}")
    return bad


def cli_violations(imports: list[Import]) -> list[str]:
    """Library modules (everything but edgegan.cli and the ``python -m edgegan`` entry) that
    import edgegan.cli."""
    return [where(i) for i in imports
            if within(i.target, "edgegan.cli") and not within(i.source, "edgegan.cli")
            and i.source != "edgegan.__main__"]


METRICS_MUST_NOT_IMPORT = ("edgegan.devices", "edgegan.export", "edgegan.converters")


def metrics_violations(imports: list[Import]) -> list[str]:
    return [where(i) for i in imports
            if within(i.source, "edgegan.metrics") and any(within(i.target, p) for p in METRICS_MUST_NOT_IMPORT)]


def unit(module: str) -> str | None:
    """The layer a module belongs to: ``edgegan.<sub>`` for subpackages and top-level modules;
    None for the root package (the lazy facade over every stage) and for non-edgegan modules."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "edgegan" and len(parts) > 1 else None


def package_graph(imports: list[Import]) -> dict[str, dict[str, Import]]:
    """unit -> {imported unit: one import that makes the edge (for the message)}."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        a, b = unit(imp.source), unit(imp.target)
        if a and b and a != b:
            graph.setdefault(a, {}).setdefault(b, imp)
    return graph


def cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Every elementary cycle, each listed once, starting from its smallest node (the graph
    has ~15 nodes, so a plain search is enough)."""
    found = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, {})):
            if nxt == start:
                found.append(path[:])
            elif nxt > start and nxt not in path:
                walk(start, nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def describe(cycle: list[str], graph: dict[str, dict[str, Import]]) -> str:
    hops = zip(cycle, cycle[1:] + cycle[:1])
    return " -> ".join(cycle + cycle[:1]) + "  (" + "; ".join(where(graph[a][b]) for a, b in hops) + ")"


def is_known(cycle: list[str]) -> bool:
    return any(sorted(cycle) == sorted(pair) for pair in KNOWN_CYCLES)


# ------------------------------------------------------------------------------ the tests
def test_the_scan_sees_the_source_tree():
    imports = all_imports()
    sources = {i.source for i in imports}
    assert {"edgegan.metrics.knn", "edgegan.converters.ort_int8", "edgegan.pipeline"} <= sources
    edges = {(i.source, i.target) for i in imports}
    assert ("edgegan.metrics.compare", "edgegan.datasets") in edges        # relative, inside a function
    assert ("edgegan.verify.host", "edgegan.runner.edgegan_runner") in edges  # `from ..runner import edgegan_runner`


def test_runner_imports_only_stdlib_numpy_and_runtimes():
    assert runner_violations() == []


def test_library_never_imports_the_cli():
    assert cli_violations(all_imports()) == []


def test_metrics_do_not_depend_on_devices_export_or_converters():
    assert metrics_violations(all_imports()) == []


def test_no_new_package_cycles():
    graph = package_graph(all_imports())
    new = sorted((c for c in cycles(graph) if not is_known(c)), key=len)
    shown = "\n".join(describe(c, graph) for c in new[:8]) + (f"\n... and {len(new) - 8} longer" if len(new) > 8 else "")
    assert new == [], f"{len(new)} package import cycle(s), shortest first:\n{shown}"


def test_known_cycles_are_still_real():
    """An allowance outlives its cycle silently otherwise; delete the KNOWN_CYCLES entry."""
    found = [sorted(c) for c in cycles(package_graph(all_imports()))]
    stale = [pair for pair in KNOWN_CYCLES if sorted(pair) not in found]
    assert stale == [], f"these cycles are gone; remove them from KNOWN_CYCLES: {stale}"


def test_sketch_training_takes_psnr_from_metrics():
    path = ROOT / "edgegan" / "models" / "training" / "sketch.py"
    imports = list(imports_of(path, {module_name(p) for p in library_files()}))
    assert [where(i) for i in imports if within(i.target, "edgegan.verify")] == []
    assert any(within(i.target, "edgegan.metrics") for i in imports)


# --- the checks themselves catch what they are meant to (on made-up code, not the tree)
def _fake_imports(rel: str, code: str) -> list[Import]:
    return list(imports_of(ROOT / rel, {module_name(p) for p in library_files()}, code))


def test_checks_catch_violations(tmp_path):
    bad_runner = tmp_path / "runner.py"
    bad_runner.write_text("import os\nimport numpy\ndef f():\n    import torch\n    from . import x\n"
                          "    import onnxruntime\n    __import__('paramiko')\n")
    assert runner_violations(bad_runner) == [
        "line 4: imports torch", "line 5: relative import (the runner must stay one self-contained file)",
        "line 7: imports paramiko"]
    cli = _fake_imports("edgegan/devices/x.py", "def f():\n    from ..cli.render import fmt\n")
    assert cli_violations(cli) == ["edgegan/devices/x.py:2 imports edgegan.cli.render"]
    met = _fake_imports("edgegan/metrics/x.py", "from edgegan import converters\n")
    assert metrics_violations(met) == ["edgegan/metrics/x.py:1 imports edgegan.converters"]
    loop = _fake_imports("edgegan/metrics/x.py", "from ..reports import grid\n")
    loop += _fake_imports("edgegan/reports/y.py", "from ..metrics import knn\n")
    found = cycles(package_graph(loop))
    assert found == [["edgegan.metrics", "edgegan.reports"]] and not is_known(found[0])
    assert not is_known(["edgegan.converters", "edgegan.export"])  # the one allowance there was is gone
