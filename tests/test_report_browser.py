"""Every report kind opened in real headless Chromium (Debian's /usr/bin/chromium, driven by
Python playwright): no console errors, nothing fetched beyond the file, every image decoded,
every plot and sample grid painted with non-blank pixels; screenshots at phone and desktop width
(saved under $EDGEGAN_REPORT_SHOTS when set, else the test's temp folder)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from support_browser import check_report, chromium_missing

KINDS = {  # name -> (report path in report_runs, plots + grids it must paint)
    "bundle-image2image": (("i2i", "report.html"), 2),  # trade-off plot + grid (with the input row)
    "profile": (("profile", "report.html"), 3),  # trade-off plot + latency CDF + grid
    "compare": (("compare", "report.html"), 2),  # P/R bars + paired grid (+ the FD panel when computed)
    "benchmark": (("bench", "report.html"), 5),  # bundle (plot + grid) + profile (2 plots + grid)
}


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    return Path(os.environ.get("EDGEGAN_REPORT_SHOTS") or tmp_path_factory.mktemp("report-shots"))


@pytest.mark.parametrize("name", list(KINDS))
def test_report_renders_in_headless_chromium(name, report_runs, shots_dir):
    why = chromium_missing()
    if why:
        pytest.skip(why)
    (key, file), min_painted = KINDS[name]
    checks = check_report(report_runs[key] / file, shots_dir, name)
    for width, c in checks.items():
        assert c.console_errors == [], (width, c.console_errors)
        assert c.requests == [], (width, c.requests)  # self-contained: nothing fetched
        assert c.images > 0 and c.broken_images == [], (width, c.broken_images)
        assert c.painted >= min_painted and c.blank == [], (width, c.painted, c.blank)
        assert c.shots[width].stat().st_size > 5_000
    assert checks["phone"].overflow_px <= 0, "wide tables scroll inside their box, the page itself fits a phone"


def test_sweep_report_renders_in_headless_chromium(tiny_sweep, shots_dir):
    """The report `edgegan sweep` writes next to its results table (grid-wide trade-off plot +
    post-training plot), in the same real browser at both widths."""
    why = chromium_missing()
    if why:
        pytest.skip(why)
    checks = check_report(tiny_sweep["out"] / "report.html", shots_dir, "sweep")
    for width, c in checks.items():
        assert c.console_errors == [], (width, c.console_errors)
        assert c.requests == [], (width, c.requests)
        assert c.images == 2 and c.broken_images == [], (width, c.images, c.broken_images)
        assert c.painted >= 2 and c.blank == [], (width, c.painted, c.blank)
    assert checks["phone"].overflow_px <= 0, "the wide results table scrolls inside its box"
