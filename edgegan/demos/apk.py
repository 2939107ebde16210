"""Build the phone demo as a WebView APK, offline, from Debian's Android tools.

Debian has no android.jar and no d8, so the two classes (MainActivity, AssetClient) are written
in smali (apk_src/) and assembled to classes.dex with ``smali assemble``; ``aapt package`` links
the manifest against the API 29 framework-res.apk and adds the page, runtime and model as assets;
``zipalign`` then ``apksigner`` with a debug key generated for this build only (never stored). The
page is loaded from https://appassets.androidplatform.net/assets/ (answered by AssetClient from
the assets), not file:///android_asset: ES modules and fetch() of the model and the wasm are
refused on file:// URLs. Everything happens in a temp dir; the APK is moved into place complete."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ConfigError, MissingDependencyError, OutputError

log = logging.getLogger(__name__)

SRC = Path(__file__).parent / "apk_src"
FRAMEWORK_RES = Path("/usr/share/android-framework-res/framework-res.apk")
PACKAGE = "org.edgegan.demo"
LABEL = "edgegan demo"
MIN_SDK = 24  # Android 7: WebResourceRequest interception (21+) and a WebView that updates itself
TARGET_SDK = 29  # the framework resources Debian ships
TOOLS = ("aapt", "zipalign", "apksigner", "smali", "keytool")
INSTALL_HINT = "run `make android-build-tools` (demos/android/install_build_tools.sh; Debian packages " \
               "aapt zipalign apksigner libsmali-java android-framework-res, and a JDK for keytool)"


def missing_tools() -> list[str]:
    """The build tools absent here (empty: an APK can be built)."""
    gone = [t for t in TOOLS if shutil.which(t) is None]
    return gone + ([str(FRAMEWORK_RES)] if not FRAMEWORK_RES.is_file() else [])


def _run(argv: list, cwd: Path | None = None) -> str:
    r = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise ConfigError(f"{Path(str(argv[0])).name} failed (exit {r.returncode}): {msg[-1] if msg else 'no output'}")
    return r.stdout


def _fill(text: str, version: str) -> str:
    return (text.replace("@PKGPATH@", PACKAGE.replace(".", "/")).replace("@PACKAGE@", PACKAGE)
            .replace("@LABEL@", LABEL).replace("@VERSION@", version)
            .replace("@MIN_SDK@", str(MIN_SDK)).replace("@TARGET_SDK@", str(TARGET_SDK)))


def build_apk(assets, out: Path, force: bool = False) -> Path:
    """Pack ``assets`` (edgegan.demos.phone.Asset list) into a signed, aligned APK at ``out``."""
    from .. import __version__

    out = Path(out)
    if out.suffix != ".apk":
        raise ConfigError(f"--apk '{out}' should end in .apk")
    if out.exists() and not force:
        raise OutputError(f"'{out}' exists; pass --force to overwrite it")
    if out.exists() and not out.is_file():
        raise OutputError(f"'{out}' is not a file; refusing to replace it")
    gone = missing_tools()
    if gone:
        raise MissingDependencyError(f"cannot build the APK: {', '.join(gone)} missing; {INSTALL_HINT}")
    try:
        _build(assets, out, __version__)
    except OSError as exc:  # unwritable or full output folder
        from ..bundle import os_error_to_edgegan

        raise os_error_to_edgegan(exc, out) from None
    log.info("built %s (%d bytes)", out, out.stat().st_size)
    return out


def _build(assets, out: Path, version: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".edgegan-apk-", dir=out.parent) as tmp:
        t = Path(tmp)
        # classes.dex from the smali sources
        smali = t / "smali"
        smali.mkdir()
        for f in SRC.glob("*.smali"):
            (smali / f.name).write_text(_fill(f.read_text(), version))
        build = t / "build"
        build.mkdir()
        _run(["smali", "assemble", "--api", MIN_SDK, "-o", build / "classes.dex", smali])
        (t / "AndroidManifest.xml").write_text(_fill((SRC / "AndroidManifest.xml").read_text(), version))
        res = t / "res" / "values"
        res.mkdir(parents=True)
        (res / "strings.xml").write_text(_fill((SRC / "res" / "values" / "strings.xml").read_text(), version))
        adir = t / "assets"
        for a in assets:
            dst = adir / a.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if a.path is not None:
                shutil.copyfile(a.path, dst)
            else:
                dst.write_bytes(a.data)
        unsigned = t / "unsigned.apk"
        _run(["aapt", "package", "-f", "-M", t / "AndroidManifest.xml", "-I", FRAMEWORK_RES, "-S", t / "res",
              "-A", adir,
              "-F", unsigned])
        _run(["aapt", "add", unsigned, "classes.dex"], cwd=build)  # at the APK's root, as Android expects
        aligned = t / "aligned.apk"
        _run(["zipalign", "-p", "-f", "4", unsigned, aligned])
        # a debug key for this build only: never written outside the temp dir
        ks, pw = t / "debug.p12", "android"
        _run(["keytool", "-genkeypair", "-keystore", ks, "-storetype", "PKCS12", "-storepass", pw, "-keypass", pw,
              "-alias", "edgegan-debug", "-keyalg", "RSA", "-keysize", "2048", "-validity", "10000",
              "-dname", "CN=edgegan demo debug key"])
        signed = t / "signed.apk"
        _run(["apksigner", "sign", "--ks", ks, "--ks-pass", f"pass:{pw}", "--key-pass", f"pass:{pw}",
              "--min-sdk-version", MIN_SDK, "--out", signed, aligned])
        _run(["apksigner", "verify", signed])
        os.replace(signed, out)
