"""The browser runner on targets: who opens the benchmark page, and the profiler whose runner is
that page (``profile --target browser`` / ``--target adb://SERIAL --runner browser``).

Drivers: a local headless Chromium (Python playwright, Debian's /usr/bin/chromium, a phone device
profile by default) or a phone's browser over adb. A driver has ``start()``, ``host`` (the host
name the page's URL uses), ``open(url)``, ``pump(seconds)`` (let it process events while the
profiler waits for the POST), ``info()`` (a :class:`DeviceInfo`), ``emulator`` (None on a real
phone) and ``close()``.

:class:`BrowserProfiler`: connecting starts the allow-list server (:mod:`edgegan.web.server`) and
the driver; each format is one :class:`~edgegan.web.runner.BrowserRun`; the page's result becomes
the runner's ``Result`` and goes through the same scoring as every other run
(:meth:`Profiler.score`).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Optional

from ..bundle import sha256_file
from ..errors import ConfigError, EdgeganError
from ..results import ProfileRow, ResultsLayout
from ..web.runner import WEB_RUNTIMES, BrowserJob, BrowserRun, page_extras, to_runner_result, web_runtime_for
from ..web.server import WebServer
from .errors import DeviceConnectionError, DeviceError
from .profile import Profiler, start_row

log = logging.getLogger(__name__)

CHROMIUM_ENV = "EDGEGAN_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# measured to work here (FACTS.md, Android): no sandbox (root in a container), no GPU, nothing
# that phones home. No --virtual-time-budget: with it performance.now() reads 0.
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")
DEFAULT_DEVICE = "Pixel 7"
DESKTOP = "desktop"


def chromium_path() -> Path:
    return Path(os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM)


class LocalChromium:
    """Headless Chromium on this host. ``device`` is a Playwright device name (default Pixel 7:
    phone user agent, viewport, touch) or ``desktop``. The CPU is this host's either way."""

    host = "127.0.0.1"

    def __init__(self, device: str = DEFAULT_DEVICE) -> None:
        self.device = device
        self._pw = self._browser = self._ctx = self._page = None
        self.console: list[str] = []

    @property
    def emulator(self) -> Optional[str]:
        what = "a desktop window" if self.device == DESKTOP else f"the {self.device} device profile (phone user agent " \
                                                                  "and viewport)"
        return f"headless Chromium on this host with {what}; the CPU is this host's, not a phone's"

    def start(self) -> "LocalChromium":
        from ..util.deps import require

        require("playwright", purpose="--target browser (headless Chromium)")
        exe = chromium_path()
        if not exe.is_file():
            raise DeviceError(f"no Chromium at {exe} for --target browser: install Debian's chromium "
                              f"(`make browser-packages`, or apt install chromium) or set ${CHROMIUM_ENV}")
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        if self.device != DESKTOP and self.device not in self._pw.devices:
            self.close()
            raise ConfigError(f"unknown browser device profile {self.device!r}; e.g. 'Pixel 7', 'Galaxy S9+', "
                              f"or {DESKTOP}")
        self._browser = self._pw.chromium.launch(executable_path=str(exe), headless=True, args=list(CHROMIUM_FLAGS))
        self.version = self._browser.version
        return self

    def open(self, url: str) -> None:
        self.close_page()
        ctx_args = {"viewport": {"width": 1280, "height": 900}} if self.device == DESKTOP else \
            dict(self._pw.devices[self.device])
        self._ctx = self._browser.new_context(**ctx_args)
        self._page = self._ctx.new_page()
        self._page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        self._page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self._page.goto(url, wait_until="commit")

    def pump(self, seconds: float) -> None:
        if self._page is not None:
            self._page.wait_for_timeout(max(1, int(seconds * 1000)))
        else:
            time.sleep(seconds)

    def close_page(self) -> None:
        if self._ctx is not None:
            try:
                self._ctx.close()
            except Exception:  # noqa: BLE001 - the browser may already be gone
                pass
            self._ctx = self._page = None

    def info(self):
        from .session import DeviceInfo
        from ..runner.edgegan_runner import cpu_model

        return DeviceInfo(arch=platform.machine(), cpu=cpu_model(), cores=os.cpu_count(),
                          os=f"headless Chromium {getattr(self, 'version', '?')} ({self.device})",
                          kernel=platform.release(), hostname=platform.node(), python="",
                          runtimes=_web_versions(), emulator=self.emulator, target="browser")

    def close(self) -> None:
        self.close_page()
        for attr, method in (("_browser", "close"), ("_pw", "stop")):
            obj = getattr(self, attr)
            if obj is not None:
                try:
                    getattr(obj, method)()
                except Exception:  # noqa: BLE001 - closing a dead browser
                    pass
                setattr(self, attr, None)


class AdbBrowser:
    """The phone's default browser, reached over adb: ``adb reverse tcp:PORT tcp:PORT`` makes the
    host's 127.0.0.1:PORT the phone's localhost:PORT (a secure context, so COOP/COEP and threads
    work), then ``am start -a android.intent.action.VIEW -d URL`` opens the page."""

    host = "localhost"
    emulator = None

    def __init__(self, transport, port: int) -> None:
        self.t = transport
        self.port = int(port)
        self._reversed = False

    def _adb(self, args: list, what: str) -> None:
        proc = self.t._client(args, timeout=max(self.t.options.connect_timeout_s, 10.0), what=what)
        if proc.returncode != 0:
            text = (proc.stderr + proc.stdout).decode(errors="replace").strip()
            raise DeviceError(f"`adb {' '.join(map(str, args))}` failed on {self.t.target}: {text[-300:] or proc.returncode}")

    def start(self) -> "AdbBrowser":
        self._adb(["reverse", f"tcp:{self.port}", f"tcp:{self.port}"], "adb reverse")
        self._reversed = True
        return self

    def open(self, url: str) -> None:
        res = self.t.run(["am", "start", "-a", "android.intent.action.VIEW", "-d", url], timeout=60)
        if res.exit_code != 0 or "Error" in res.stdout:
            raise DeviceError(f"`am start` could not open the page on {self.t.target} (is this an Android device?): "
                              f"{(res.stderr or res.stdout).strip()[-300:]}")

    def pump(self, seconds: float) -> None:
        time.sleep(seconds)

    def info(self):
        info = self.t.device_info()
        info.runtimes = _web_versions()
        return info

    def close(self) -> None:
        if self._reversed:
            try:
                self._adb(["reverse", "--remove", f"tcp:{self.port}"], "adb reverse --remove")
            except DeviceError as exc:
                log.info("%s", exc)
            self._reversed = False


def _web_versions() -> dict:
    from ..web.server import npm_version

    return {name: v for name, rt in WEB_RUNTIMES.items() if (v := npm_version(rt.npm))}


class BrowserProfiler(Profiler):
    """A :class:`Profiler` whose runner is the benchmark page (see the module docstring)."""

    def connect(self) -> None:
        self.progress("connect", None, None)
        self.server = WebServer().start()
        try:
            if self.cfg.target == "browser":
                self.driver = LocalChromium(self.cfg.browser_device).start()
            else:
                from .targets import open_target

                self.driver = AdbBrowser(open_target(self.cfg.target, self.cfg.target_options), self.server.port).start()
            self.info = self.driver.info()
        except BaseException:
            self.cleanup()
            raise

    reconnect_errors = (EdgeganError,)

    def disconnect(self) -> None:
        self.cleanup()

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
        row, rec = start_row(self.bundle, self.cfg.target, device, item)
        if rec is None:
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
