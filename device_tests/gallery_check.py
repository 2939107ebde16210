"""What a person sees on the demo gallery page, checked with the shipped digits classifier.

The page is opened in Debian's headless Chromium (Python playwright, no downloaded browser), the
screenshot is cut at the sample images' boxes, and each crop goes through the digits CNN that
edgegan ships for its metrics. A digits classifier is confident on almost anything (uniform noise
reads as a sure "8", a blank tile as a sure "1"), so "looks like digits" asks three things at
once, and controls built from the same screenshot must fail it: confident predictions, several
different classes, and features near real digits (nearest real digit in the CNN's 64-d feature
space, relative to the real digits' own 3-NN radius)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# measured 2026-12-01 on the emulated board's page: samples 0.94 confident / 9 classes / 1.36;
# the bundle's float reference 0.88 / 8 / 1.41; noise, blank, Gaussian blobs and the page's own
# pixels shuffled: 1 - 3 classes or distance >= 1.96
MIN_CONFIDENT, CONFIDENCE, MIN_CLASSES, MAX_DISTANCE = 0.6, 0.6, 4, 1.8


def browser_missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} missing: run `make browser-packages`"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright missing: pip install -r requirements/test.txt"
    return None


def screenshot_gallery(url: str, shot: Path, grid: int, timeout_s: float = 180) -> np.ndarray:
    """Open the page, wait until every sample tile shows a decoded image, save a screenshot and
    return the tiles cut from it as [grid, 32, 32] float32 in [-1, 1] (what the reader saw)."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = b.new_page(viewport={"width": 860, "height": 640})
            errors: list = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="load")
            page.wait_for_function(
                f"""() => document.querySelectorAll('img.sample[data-seq]').length == {grid} &&
                   Array.from(document.querySelectorAll('img.sample')).every(i => i.complete && i.naturalWidth > 0)""",
                timeout=timeout_s * 1000)
            page.wait_for_timeout(300)  # let the last tiles paint
            png = page.screenshot(path=str(shot))
            boxes = [i.bounding_box() for i in page.locator("img.sample").all()]
            assert not errors, errors
        finally:
            b.close()
    img = Image.open(io.BytesIO(png)).convert("L")
    tiles = [img.crop(tuple(int(round(v)) for v in (bb["x"], bb["y"], bb["x"] + bb["width"], bb["y"] + bb["height"])))
             .resize((32, 32), Image.BOX) for bb in boxes]
    return np.stack([np.asarray(t, np.float32) for t in tiles]) / 127.5 - 1.0


def digit_scores(tiles: np.ndarray) -> dict:
    """confident fraction, distinct classes and relative feature distance of [N, 32, 32] tiles."""
    import torch

    from edgegan.datasets import digits_images
    from edgegan.metrics.digits_cnn import load_digits_cnn
    from edgegan.metrics.features import extract_features
    from edgegan.metrics.knn import knn_radii

    x = np.asarray(tiles, np.float32)[:, None]
    with torch.no_grad():
        prob = torch.softmax(load_digits_cnn()(torch.from_numpy(x)), 1).numpy()
    real = extract_features(digits_images(), "digits")
    fake = extract_features(x, "digits")
    nearest = np.sqrt(((real[:, None, :] - fake[None]) ** 2).sum(-1)).min(axis=0)
    return {"confident": float((prob.max(1) >= CONFIDENCE).mean()), "classes": int(len(set(prob.argmax(1).tolist()))),
            "distance": float(np.median(nearest) / np.median(knn_radii(real, 3))),
            "labels": prob.argmax(1).tolist(), "confidence": np.round(prob.max(1), 2).tolist()}


def looks_like_digits(s: dict) -> bool:
    return s["confident"] >= MIN_CONFIDENT and s["classes"] >= MIN_CLASSES and s["distance"] <= MAX_DISTANCE


def controls(tiles: np.ndarray, seed: int = 0) -> dict:
    """Tiles that are not digits: uniform noise, blank, and the page's own pixels shuffled."""
    rng = np.random.default_rng(seed)
    n = len(tiles)
    return {"noise": rng.uniform(-1, 1, (n, 32, 32)).astype(np.float32),
            "blank": np.full((n, 32, 32), -1.0, np.float32),
            "shuffled": np.stack([rng.permutation(t.ravel()).reshape(32, 32) for t in tiles]).astype(np.float32)}
