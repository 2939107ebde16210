"""The phone demo (`edgegan demo phone`): the WebView APK built offline with Debian's Android tools
and checked statically (aapt badging, apksigner, its contents, a tampered copy refused), and the
same page served by the CLI and run in headless Chromium as a Pixel 7 with onnxruntime-web: the
grid renders digits the shipped digits classifier recognises, a tap refreshes it, and the pixels
are the host ONNX Runtime's outputs for the latents the page drew."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TESTS
from support_browser import CHROMIUM, FLAGS, PHONE_DEVICE, chromium_missing

ORT_DIST = ROOT / "web" / "node_modules" / "onnxruntime-web" / "dist"
SCREENSHOT = ROOT / "docs" / "img" / "demo-phone.png"


def _sha(p: Path | bytes) -> str:
    return hashlib.sha256(p if isinstance(p, bytes) else Path(p).read_bytes()).hexdigest()


def _needs_runtime():
    if not (ORT_DIST / "ort-wasm-simd-threaded.wasm").is_file():
        pytest.skip("onnxruntime-web missing: run `make web-packages`")


@pytest.fixture(scope="module")
def tiny_onnx_bundle(tmp_path_factory):
    """dcgan-tiny with its onnx artifact only (~10 s): enough to pack an APK."""
    from edgegan.pipeline import ExportConfig, run_export

    out = tmp_path_factory.mktemp("phone") / "dcgan-tiny"
    path, _ = run_export(ExportConfig(model="dcgan-tiny", out=str(out), formats=["onnx"], n_inputs=4,
                                      calibration=4, latency_rounds=1, latency_runs=2))
    return Path(path)


@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory):
    """The zoo's trained dcgan-digits, fp32 and int8 (~35 s): the page must show real digits."""
    from edgegan.models.zoo import ZOO
    from edgegan.pipeline import ExportConfig, run_export

    if not ZOO.get("dcgan-digits").weights_path.is_file():
        pytest.skip("dcgan-digits weights are not shipped in this checkout")
    out = tmp_path_factory.mktemp("phone") / "dcgan-digits"
    path, _ = run_export(ExportConfig(model="dcgan-digits", out=str(out), formats=["onnx", "ort-int8"],
                                      n_inputs=16, calibration=64, latency_rounds=1, latency_runs=2))
    return Path(path)


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "edgegan", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------- the APK, checked statically

def test_apk_is_built_signed_and_carries_page_runtime_and_model(tiny_onnx_bundle, tmp_path):
    from edgegan.demos.apk import missing_tools

    _needs_runtime()
    gone = missing_tools() + ([] if shutil.which("dexdump") else ["dexdump"])
    if gone:
        pytest.skip(f"{', '.join(gone)} missing: run `make android-build-tools`")
    out = tmp_path / "out" / "edgegan-demo.apk"
    r = _cli("demo", "phone", str(tiny_onnx_bundle), "--apk", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"built {out}" in r.stdout

    badging = subprocess.run(["aapt", "dump", "badging", str(out)], capture_output=True, text=True, check=True).stdout
    assert "package: name='org.edgegan.demo'" in badging
    assert "launchable-activity: name='org.edgegan.demo.MainActivity'" in badging
    assert "sdkVersion:'24'" in badging and "targetSdkVersion:'29'" in badging
    assert "application-label:'edgegan demo'" in badging
    v = subprocess.run(["apksigner", "verify", "--verbose", str(out)], capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    assert "Verified using v2 scheme (APK Signature Scheme v2): true" in v.stdout

    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        manifest = json.loads((tiny_onnx_bundle / "bundle.json").read_text())
        onnx = next(a for a in manifest["artifacts"] if a["format"] == "onnx")
        assert _sha(z.read("assets/models/onnx.onnx")) == onnx["sha256"]
        for name in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"):
            assert z.read(f"assets/ort/{name}") == (ORT_DIST / name).read_bytes(), name
        config = json.loads(z.read("assets/config.json"))
        assert config["input"]["shape"] == manifest["input"]["shape"] and config["default"] == "onnx"
        assert {"assets/index.html", "assets/demo.js", "classes.dex", "AndroidManifest.xml"} <= names
        assert not any(n.endswith((".p12", ".jks", ".keystore")) for n in names)
        dex = tmp_path / "classes.dex"
        dex.write_bytes(z.read("classes.dex"))
    # ART's dexdump opens classes.dex through its DexFileVerifier: exactly our two classes, with
    # the framework superclasses and the interception hook Android calls
    dump = subprocess.run(["dexdump", "-d", str(dex)], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    descriptors = re.findall(r"Class descriptor\s*: '([^']+)'", dump.stdout)
    assert sorted(descriptors) == ["Lorg/edgegan/demo/AssetClient;", "Lorg/edgegan/demo/MainActivity;"]
    supers = re.findall(r"Superclass\s*: '([^']+)'", dump.stdout)
    assert sorted(supers) == ["Landroid/app/Activity;", "Landroid/webkit/WebViewClient;"]
    assert ("'(Landroid/webkit/WebView;Landroid/webkit/WebResourceRequest;)Landroid/webkit/WebResourceResponse;'"
            in dump.stdout)
    assert '"https://appassets.androidplatform.net/assets/index.html"' in dump.stdout
    # the build left nothing else behind (no key, no temp dir) and the APK is zip-aligned
    assert sorted(p.name for p in out.parent.iterdir()) == ["edgegan-demo.apk"]
    assert subprocess.run(["zipalign", "-c", "-p", "4", str(out)], capture_output=True).returncode == 0

    # a tampered copy (one byte of the model changed, zip rewritten) no longer verifies
    bad = tmp_path / "tampered.apk"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "assets/models/onnx.onnx":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(info, data)
    t = subprocess.run(["apksigner", "verify", str(bad)], capture_output=True, text=True)
    assert t.returncode != 0 and "DOES NOT VERIFY" in (t.stdout + t.stderr)

    # an existing APK is not overwritten without --force
    before = _sha(out)
    again = _cli("demo", "phone", str(tiny_onnx_bundle), "--apk", str(out))
    assert again.returncode != 0 and "--force" in again.stderr and _sha(out) == before


def test_bundles_the_page_cannot_show_are_refused_in_one_line(tiny_onnx_bundle, tmp_path):
    _needs_runtime()
    r = _cli("demo", "phone", str(tiny_onnx_bundle), "--format", "ort-int8", "--apk", str(tmp_path / "x.apk"))
    assert r.returncode != 0 and "no usable ort-int8 artifact" in r.stderr and "Traceback" not in r.stderr
    image = tmp_path / "image-bundle"
    shutil.copytree(tiny_onnx_bundle, image)
    mf = json.loads((image / "bundle.json").read_text())
    mf["input"]["kind"] = "image"
    (image / "bundle.json").write_text(json.dumps(mf))
    r = _cli("demo", "phone", str(image), "--port", "0")
    assert r.returncode != 0 and "draws samples from random latents" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.apk").exists()
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGEGAN_WEB_MODULES=str(tmp_path / "no-node-modules"))
    r = subprocess.run([sys.executable, "-m", "edgegan", "demo", "phone", str(tiny_onnx_bundle), "--port", "0"],
                       capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "make web-packages" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- the page, served and run

class Served:
    """`edgegan demo phone BUNDLE --port 0` as a user starts it; stopped at exit."""

    def __init__(self, bundle: Path, *extra: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "edgegan", "demo", "phone", str(bundle), "--port", "0",
                                      *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     stdin=subprocess.DEVNULL)
        self.lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"server exited: {self.proc.stderr.read()}")
            self.lines.append(line)
            if line.startswith("or on the same Wi-Fi"):
                break
        m = re.search(r"http://localhost:(\d+)/", self.lines[0])
        assert m, self.lines
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def test_server_prints_adb_steps_and_serves_only_its_files(tiny_onnx_bundle):
    _needs_runtime()
    s = Served(tiny_onnx_bundle)
    try:
        text = "".join(s.lines)
        assert f"adb reverse tcp:{s.port} tcp:{s.port}" in text
        assert f"adb shell am start -a android.intent.action.VIEW -d http://localhost:{s.port}/" in text
        cfg = json.loads(urllib.request.urlopen(s.url + "config.json", timeout=10).read())
        manifest = json.loads((tiny_onnx_bundle / "bundle.json").read_text())
        assert cfg["input"]["shape"] == manifest["input"]["shape"]
        assert cfg["output"]["shape"] == manifest["output"]["shape"]
        assert [f["format"] for f in cfg["formats"]] == ["onnx"]
        model = urllib.request.urlopen(s.url + cfg["formats"][0]["url"], timeout=10)
        assert _sha(model.read()) == next(a for a in manifest["artifacts"] if a["format"] == "onnx")["sha256"]
        wasm = urllib.request.urlopen(s.url + "ort/ort-wasm-simd-threaded.wasm", timeout=10)
        assert wasm.headers["Content-Type"] == "application/wasm"
        for path in ("bundle.json", "../bundle.json", "%2e%2e/bundle.json", "models/../bundle.json",
                     "artifacts/model.onnx", "ort/ort.all.min.mjs", "index.html/..", "/etc/passwd"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(s.url + path, timeout=10)
            assert e.value.code == 404, path
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(s.url + "config.json", data=b"x"), timeout=10)
        assert e.value.code == 501
    finally:
        s.stop()


def _cells(png: bytes, grid: int, size: int) -> np.ndarray:
    """The grid canvas screenshot cut back into its [grid*grid, size, size] samples in [-1, 1]."""
    from PIL import Image

    im = Image.open(io.BytesIO(png)).convert("L").resize((grid * size, grid * size), Image.BOX)
    a = np.asarray(im, np.float32) / 127.5 - 1.0
    return np.stack([a[r * size:(r + 1) * size, c * size:(c + 1) * size] for r in range(grid) for c in range(grid)])


class DigitsJudge:
    """Does the shipped digits classifier recognise an image as a digit? Its softmax cannot say
    (it is >99% sure of a blank or a noise image), so a sample counts as recognised when its
    64-d classifier features lie among real digits': the distance to the nearest of 1497 real
    scikit-learn digits is within the 99th percentile of that distance for 300 held-out ones."""

    def __init__(self) -> None:
        import torch

        from edgegan.datasets import digits_images
        from edgegan.metrics.digits_cnn import load_digits_cnn

        self.torch, self.model = torch, load_digits_cnn()
        real = self.features(digits_images(32)[:, 0])
        idx = np.random.default_rng(0).permutation(len(real))
        self.ref = real[idx[300:]]
        self.threshold = float(np.quantile(self._nearest(real[idx[:300]]), 0.99))

    def features(self, x: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.model.features(self.torch.from_numpy(np.asarray(x, np.float32)[:, None])).numpy()

    def _nearest(self, f: np.ndarray) -> np.ndarray:
        return np.sqrt(((f[:, None, :] - self.ref[None]) ** 2).sum(-1)).min(axis=1)

    def recognised(self, x: np.ndarray) -> np.ndarray:
        return self._nearest(self.features(x)) <= self.threshold


def _host_outputs(bundle: Path, fmt_file: str, latents: list) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(str(bundle / fmt_file), providers=["CPUExecutionProvider"])
    z = np.asarray(latents, np.float32).reshape(len(latents), *s.get_inputs()[0].shape[1:])
    return np.concatenate([s.run(None, {s.get_inputs()[0].name: z[i:i + 1]})[0] for i in range(len(z))])[:, 0]


def test_page_in_phone_chromium_shows_digits_and_refreshes_on_tap(digits_bundle, tmp_path):
    _needs_runtime()
    why = chromium_missing()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    manifest = json.loads((digits_bundle / "bundle.json").read_text())
    files = {a["format"]: a["path"] for a in manifest["artifacts"]}
    s = Served(digits_bundle)
    errors, requests = [], []
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
            try:
                ctx = b.new_context(**p.devices[PHONE_DEVICE])
                page = ctx.new_page()
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("request", lambda r: requests.append(r.url))
                page.goto(s.url)
                page.wait_for_selector("body[data-runs='1']", timeout=120_000)
                assert "Android" in page.evaluate("navigator.userAgent")
                status1 = page.inner_text("#status")
                shot1 = page.locator("#grid").screenshot()
                lat1 = page.evaluate("window.edgeganDemo.latents")
                full = page.screenshot()
                page.tap("#grid")
                page.wait_for_selector("body[data-runs='2']", timeout=120_000)
                shot2 = page.locator("#grid").screenshot()
                page.click("button[data-format='ort-int8']")
                page.wait_for_selector("body[data-runs='3']", timeout=120_000)
                status3 = page.inner_text("#status")
                shot3 = page.locator("#grid").screenshot()
                lat3 = page.evaluate("window.edgeganDemo.latents")
                assert page.inner_text("#error") == ""
            finally:
                b.close()
    finally:
        s.stop()
    assert errors == []
    assert all(u.startswith(s.url) for u in requests), [u for u in requests if not u.startswith(s.url)]
    assert re.search(r"fp32 \(onnx\) · \d+\.\d\d ms per inference \(median of 16, batch 1\)", status1), status1
    assert re.search(r"int8 \(ort-int8\) · \d+\.\d\d ms per inference", status3), status3
    (tmp_path / "phone.png").write_bytes(full)
    if os.environ.get("EDGEGAN_UPDATE_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(full)

    g1, g2, g3 = (_cells(x, 4, 32) for x in (shot1, shot2, shot3))
    # a tap draws a new grid from new latents
    assert len(lat1) == 16 and np.abs(g1 - g2).mean() > 0.05
    # the pixels are the host runtime's outputs for the page's latents (8-bit display, resampling)
    for grid, fmt, lat in ((g1, "onnx", lat1), (g3, "ort-int8", lat3)):
        host = _host_outputs(digits_bundle, files[fmt], lat)
        err = np.abs(grid - host).mean()
        assert err < 0.03, (fmt, err)
        assert np.abs(grid - _host_outputs(digits_bundle, files[fmt], lat[::-1])).mean() > 5 * err
    # the digits classifier recognises most samples; a blank, noise, and the samples' own pixels
    # shuffled (same histogram, no digit shape) it does not
    judge = DigitsJudge()
    samples = np.concatenate([g1, g2, g3])
    ok = judge.recognised(samples)
    assert ok.mean() >= 2 / 3, ok.mean()  # ~0.8 measured over 3 grids
    rng = np.random.default_rng(0)
    controls = np.stack([np.full((32, 32), -1.0), *rng.uniform(-1, 1, (3, 32, 32))]).astype(np.float32)
    assert not judge.recognised(controls).any()
    shuffled = np.stack([rng.permutation(x.ravel()).reshape(32, 32) for x in samples])
    assert judge.recognised(shuffled).mean() <= 0.25
