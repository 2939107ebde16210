"""Size of the phone demo APK for a bundle, and what it is made of (compressed bytes per part).

    python benchmarks/phone_demo_apk.py [BUNDLE]      # default bundles/dcgan-digits (make demo)

Builds the APK in a temp dir with `edgegan demo phone BUNDLE --apk` (the same code as
`make android-demo`) and prints the table; nothing is left behind."""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", default="bundles/dcgan-digits")
    args = ap.parse_args()
    from edgegan.demos.apk import build_apk
    from edgegan.demos.phone import page_assets

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        apk = build_apk(page_assets(args.bundle), Path(tmp) / "edgegan-demo.apk")
        seconds = time.perf_counter() - t0
        parts: dict[str, list[int]] = {}
        with zipfile.ZipFile(apk) as z:
            for i in z.infolist():
                n = i.filename
                key = ("model " + n.split("/")[-1] if n.startswith("assets/models/")
                       else "onnxruntime-web" if n.startswith("assets/ort/")
                       else "page (html, js, config)" if n.startswith("assets/")
                       else "classes.dex + manifest + resources" if not n.startswith("META-INF/") else "signature")
                acc = parts.setdefault(key, [0, 0])
                acc[0] += i.file_size
                acc[1] += i.compress_size
        total = apk.stat().st_size
    load = os.getloadavg()
    print(f"# phone demo APK for {args.bundle}: {datetime.date.today()}, load {load[0]:.2f} {load[1]:.2f}, "
          f"build {seconds:.1f} s")
    print(f"| part | bytes | in the APK (compressed) |\n|---|---:|---:|")
    for key, (raw, packed) in sorted(parts.items(), key=lambda kv: -kv[1][1]):
        print(f"| {key} | {raw:,} | {packed:,} |")
    print(f"| **APK file** | | **{total:,}** ({total / 1e6:.1f} MB) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
