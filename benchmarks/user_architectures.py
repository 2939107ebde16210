"""What each user-style architecture (tests/support_user_archs.py) gives per format: one export per
architecture to every installed format, then a table architecture x format -> ok / degraded /
failed (reason), printed as markdown.

    .venv/bin/python benchmarks/user_architectures.py [--archs a,b] [--formats f,g] [--out DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # support_user_archs: tests/ is not a package (a test dependency ships a top-level `tests`)


def main() -> int:
    from edgegan.errors import EdgeganError
    import edgegan
    from support_user_archs import ARCHS, build

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default=",".join(ARCHS))
    p.add_argument("--formats", default=None, help="default: every installed default format")
    p.add_argument("--out", default=None, help="folder for the bundles (default: a temp dir)")
    args = p.parse_args()
    formats = args.formats.split(",") if args.formats else None
    out_root = Path(args.out or tempfile.mkdtemp(prefix="edgegan-user-archs-"))
    rows: dict[str, dict[str, str]] = {}
    seen: list[str] = []
    for name in args.archs.split(","):
        _, kwargs = ARCHS[name]
        t0 = time.perf_counter()
        try:
            b = edgegan.export(build(name), out_root / name, formats, n_inputs=8, calibration=16, overwrite=True,
                               **kwargs)
        except EdgeganError as exc:
            rows[name] = {"*": f"refused ({type(exc).__name__}: {exc})"}
            print(f"{name}: refused in {time.perf_counter() - t0:.0f} s: {exc}", file=sys.stderr)
            continue
        m = b.manifest.to_dict()
        cells = {}
        for a in m["artifacts"]:
            fmt = a["format"]
            seen.append(fmt)
            if a["status"] == "ok":
                cells[fmt] = f"ok {a['fidelity']['psnr_db']} dB" if a.get("fidelity", {}).get("psnr_db") else "ok (exact)"
            else:
                cells[fmt] = f"{a['status']} ({a.get('reason')})"
        exp = m["export"]
        extra = [f"batch {exp.get('batch', 'dynamic')}"]
        if any(a.get("notes") and "replace" in str(a.get("notes")) for a in m["artifacts"]):
            extra.append("op replacement")
        cells["export"] = ", ".join(extra)
        rows[name] = cells
        print(f"{name}: {time.perf_counter() - t0:.0f} s: {cells}", file=sys.stderr, flush=True)  # a cut run keeps its rows
    cols = ["export", *dict.fromkeys(seen)]
    print("| architecture | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, cells in rows.items():
        if "*" in cells:
            print(f"| {name} | " + cells["*"] + " |" + " |" * (len(cols) - 1))
        else:
            print(f"| {name} | " + " | ".join(cells.get(c, "-") for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
