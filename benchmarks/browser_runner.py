#!/usr/bin/env python3
"""docs/devices.md "Phones: the browser runner": dcgan-digits in headless Chromium (phone
profile) vs the same artifact in this host's Python runtime.

    .venv/bin/python benchmarks/browser_runner.py [--bundle DIR] [--runs 200] [--warmup 20]

For every format an in-browser runtime takes (onnx, ort-int8 -> onnxruntime-web; tflite-* ->
tfjs-tflite): p50 latency in the page (1 and 2 wasm threads; the page is cross-origin isolated,
so threads are available) against the host runtime (onnxruntime / ai-edge-litert, 1 thread,
same warm-up and runs, timed the same way: one runtime call per run), max abs difference of
the outputs on every stored input, page load (navigation to the benchmark script) and model
load (fetch + runtime init + session). One run, ratios within it; the machine's load average
is printed before and after. Exports dcgan-digits first unless --bundle is given.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def host_p50(path: str, fmt: str, io: dict, inputs, warmup: int, runs: int) -> tuple[float, object]:
    import numpy as np

    from edgegan.runner.edgegan_runner import Artifact, time_latency

    art = Artifact(path, fmt, io, threads=1)
    _, ms = time_latency(art, inputs[:1], warmup, runs)
    return float(np.median(ms)), art.run_all(inputs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="an exported dcgan-digits bundle (default: export one to a temp dir)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--device", default="Pixel 7", help="Playwright device profile or 'desktop'")
    args = ap.parse_args(argv)

    import numpy as np

    import edgegan
    from edgegan.bundle import Bundle
    from edgegan.devices.browser import LocalChromium
    from edgegan.web.runner import BrowserJob, BrowserRun, web_runtime_for
    from edgegan.web.server import WebServer

    if args.bundle:
        bundle = Bundle.load(args.bundle)
    else:
        out = Path(tempfile.mkdtemp(prefix="edgegan-browser-bench-")) / "dcgan-digits"
        bundle = edgegan.export("dcgan-digits", out=out, overwrite=True)
    inputs = bundle.inputs()
    load0 = os.getloadavg()
    print(f"# {bundle.manifest.model.name}, {len(inputs)} stored inputs, {args.runs} runs after {args.warmup} warm-up, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load avg before {load0[0]:.2f}")
    rows = []
    with WebServer() as srv:
        driver = LocalChromium(args.device).start()
        try:
            for rec in bundle.artifact_records():
                if rec.status == "failed" or rec.path is None or web_runtime_for(rec.path) is None:
                    continue
                path = bundle.artifact_path(rec)
                host_ms, host_out = host_p50(str(path), rec.format, rec.io or {}, inputs, args.warmup, args.runs)
                row = {"format": rec.format, "runtime": web_runtime_for(rec.path).name, "host_ms": host_ms}
                for threads in (1, 2):
                    job = BrowserJob(artifact=path, format=rec.format, inputs=inputs, io=dict(rec.io or {}),
                                     output_shape=list(bundle.manifest.output["shape"]), warmup=args.warmup,
                                     runs=args.runs, threads=threads)
                    run = BrowserRun(srv, job)
                    try:
                        driver.open(run.url())
                        page = run.wait(600, pump=driver.pump)
                    except edgegan.errors.EdgeganError as exc:
                        row["error"] = str(exc).split("(runtime: ")[-1].rstrip(")")[:110]
                        break
                    finally:
                        run.close()
                        driver.close_page()
                    row[f"web{threads}_ms"] = float(np.median(page.times_ms))
                    if threads == 1:
                        row["diff"] = float(np.abs(page.samples - host_out).max())
                        row["page_ms"], row["load_ms"] = page.page_ms, page.model_load_ms
                rows.append(row)
        finally:
            driver.close()
    load1 = os.getloadavg()
    print("\n| format | browser runtime | host p50 ms (1 thread) | page p50 ms, 1 thread | ratio | page p50 ms, 2 threads "
          "| ratio | max abs diff vs host | page load ms | model load ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['format']} | {r['runtime']} | {r['host_ms']:.3f} | fails: {r['error']} | | | | | | |")
            continue
        print(f"| {r['format']} | {r['runtime']} | {r['host_ms']:.3f} | {r['web1_ms']:.3f} | "
              f"{r['web1_ms'] / r['host_ms']:.1f}x | {r['web2_ms']:.3f} | {r['web2_ms'] / r['host_ms']:.1f}x | "
              f"{r['diff']:.2e} | {r['page_ms']:.0f} | {r['load_ms']:.0f} |")
    print(f"\nload avg after {load1[0]:.2f} (2 shared cores: compare ratios within this run only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
