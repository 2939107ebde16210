"""`edgegan profile --target browser` / `--target adb://SERIAL --runner browser`: the profiler
with a web page as the runner. Connecting starts the allow-list server and the driver; each
format is one :class:`~edgegan.web.runner.BrowserRun`; the page's result becomes the runner's
``Result`` and goes through the same scoring as every other run (:meth:`Profiler.score`)."""
from __future__ import annotations

import json
import logging
import time

from ..bundle import ArtifactRecord, sha256_file
from ..devices.errors import DeviceConnectionError, DeviceError
from ..devices.profile import Profiler, _row_base, target_label
from ..errors import EdgeganError
from ..results import ProfileRow, ResultsLayout
from .runner import WEB_RUNTIMES, BrowserJob, BrowserRun, page_extras, to_runner_result, web_runtime_for
from .server import WebServer

log = logging.getLogger(__name__)


class BrowserProfiler(Profiler):
    """A :class:`Profiler` whose runner is the benchmark page (see the module docstring)."""

    def connect(self) -> None:
        self.progress("connect", None, None)
        self.server = WebServer().start()
        try:
            if self.cfg.target == "browser":
                from .drivers import LocalChromium

                self.driver = LocalChromium(self.cfg.browser_device).start()
            else:
                from ..devices.targets import open_target
                from .drivers import AdbBrowser

                self.driver = AdbBrowser(open_target(self.cfg.target, self.cfg.target_options), self.server.port).start()
            self.info = self.driver.info()
        except BaseException:
            self.cleanup()
            raise

    def reconnect(self) -> bool:
        self.cleanup()
        try:
            self.connect()
            return True
        except EdgeganError as exc:
            log.warning("reconnect to %s failed: %s", self.cfg.target, exc)
            return False

    def cleanup(self) -> None:
        driver, server = getattr(self, "driver", None), getattr(self, "server", None)
        self.driver = self.server = None
        try:
            if driver is not None:
                driver.close()
        finally:
            if server is not None:
                server.close()

    def one(self, item) -> ProfileRow:
        device = (self.info.hostname if self.info else "") or self.cfg.target
        if isinstance(item, str):
            have = ", ".join(r.format for r in self.bundle.artifact_records())
            return ProfileRow(device=device, target=target_label(self.cfg.target), format=item, status="failed",
                              reason=f"not in the bundle (it has: {have}); re-export with --formats {item}")
        rec: ArtifactRecord = item
        row = _row_base(rec, self.cfg.target, device)
        if rec.status == "failed" or rec.path is None:
            row.reason = f"export failed: {rec.reason}"
            return row
        rt = web_runtime_for(rec.path)
        if rt is None:
            takes = ", ".join(f"{s} ({r.name})" for r in WEB_RUNTIMES.values() for s in r.suffixes)
            row.reason = f"no in-browser runtime runs {rec.path.rsplit('/', 1)[-1]}; the browser runner takes {takes}"
            return row
        row.runtime = rt.name
        t0 = time.monotonic()
        art = self.bundle.artifact_path(rec)
        actual = sha256_file(art)
        if actual != rec.sha256:
            row.reason = (f"{rec.path} does not match its sha256 in bundle.json (file {actual[:12]}…, manifest "
                          f"{(rec.sha256 or 'none')[:12]}…): modified or corrupt; re-export the bundle")
            return row
        job = BrowserJob(artifact=art, format=rec.format, inputs=self.bundle.inputs(), io=dict(rec.io or {}),
                         output_shape=list(self.bundle.manifest.output.get("shape", [])),
                         warmup=self.cfg.warmup, runs=self.cfg.runs, threads=self.cfg.threads)
        run = BrowserRun(self.server, job)
        try:
            self.progress("push", rec.format, None)
            self.driver.open(run.url(self.driver.host))
            self.progress("run", rec.format, None)
            page = run.wait(self.cfg.timeout_s, pump=self.driver.pump)
        except DeviceConnectionError:
            raise
        except DeviceError as exc:
            # uncaught page errors only: tfjs-tflite's first probe for its wasm glue is a known, harmless 404
            console = [c for c in getattr(self.driver, "console", []) if c.startswith("pageerror")]
            row.reason = str(exc) + (f" (console: {'; '.join(console[-3:])[:300]})" if console else "")
            return row
        finally:
            run.close()
            if hasattr(self.driver, "close_page"):
                self.driver.close_page()
        self.progress("pull", rec.format, None)
        result, buf = to_runner_result(job, page, self.driver.emulator)
        layout = ResultsLayout(self.out)
        local_dir = layout.format_dir(rec.format)
        local_dir.mkdir(parents=True, exist_ok=True)
        sp = layout.samples(rec.format)
        sp.write_bytes(buf)
        (local_dir / ResultsLayout.DEVICE_RESULTS).write_text(json.dumps(result.to_dict(), indent=1))
        row.browser = page_extras(page)
        return self.score(row, rec, result, sp, t0)
