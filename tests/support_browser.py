"""Open an HTML report in Debian's headless Chromium (Python playwright) and check what a reader
sees: no console errors, no request leaving the file, every image decoded, every plot and
sample grid painted with real (non-blank) pixels; screenshots at phone and desktop width."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# the flags measured to work here (docs: /work/shared/FACTS.md, section Android)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE_DEVICE = "Pixel 7"


@dataclass
class PageCheck:
    console_errors: list = field(default_factory=list)
    requests: list = field(default_factory=list)  # URLs other than the report file itself
    images: int = 0
    broken_images: list = field(default_factory=list)
    blank: list = field(default_factory=list)  # plots / grids whose painted pixels are one flat colour
    painted: int = 0  # plots + grids checked by pixels
    overflow_px: int = 0  # page wider than the viewport (phone)
    load_s: float = 0.0
    shots: dict = field(default_factory=dict)


def chromium_missing() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} missing: run `make browser-packages` (tests/install_browser_packages.sh, needs root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright missing: pip install -r requirements/test.txt"
    return None


def _flat(png: bytes) -> bool:
    """True when the painted region has (almost) no variation: nothing was drawn."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("L"), np.float32)
    return a.size == 0 or float(a.std()) < 2.0


def check_report(path: Path, shots_dir: Path, name: str) -> dict[str, PageCheck]:
    """Open ``path`` at desktop and phone width; screenshots ``<name>-desktop.png`` / ``-phone.png``."""
    from playwright.sync_api import sync_playwright

    url = Path(path).resolve().as_uri()
    shots_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, PageCheck] = {}
    # launch() gives every browser a new temporary --user-data-dir of its own
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            for label, ctx_args in (("desktop", DESKTOP), ("phone", dict(p.devices[PHONE_DEVICE]))):
                ctx = b.new_context(**ctx_args)
                page = ctx.new_page()
                check = PageCheck()
                page.on("console", lambda m, c=check: c.console_errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, c=check: c.console_errors.append(str(e)))
                page.on("request", lambda r, c=check: c.requests.append(r.url) if r.url != url else None)
                t0 = time.perf_counter()
                page.goto(url, wait_until="load")
                check.load_s = time.perf_counter() - t0
                info = page.evaluate("""() => Array.from(document.images).map(i => ({
                    alt: i.alt, ok: i.complete && i.naturalWidth > 0 && i.naturalHeight > 0}))""")
                check.images = len(info)
                check.broken_images = [i["alt"] for i in info if not i["ok"]]
                for loc in page.locator("img.plot, table.grid").all():
                    loc.scroll_into_view_if_needed()
                    check.painted += 1
                    if _flat(loc.screenshot()):
                        check.blank.append(loc.get_attribute("alt") or "grid")
                check.overflow_px = int(page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))
                shot = shots_dir / f"{name}-{label}.png"
                page.screenshot(path=str(shot), full_page=False)
                check.shots[label] = shot
                out[label] = check
                ctx.close()
        finally:
            b.close()
    return out
