"""A stand-in for the adb client (``$EDGEGAN_ADB``) for what cannot exist here: an Android phone
with a browser. Every call is logged (one JSON argv per line in ``$FAKE_ADB_LOG``) so the tests
can check the command sequence; the "device" is this host: ``shell`` runs its command with
``sh -c``, ``push`` / ``pull`` copy files, ``reverse`` succeeds (the host's port is already the
"phone's" localhost). ``shell am start -a android.intent.action.VIEW -d URL`` opens URL in real
headless Chromium with the Pixel 7 profile in a detached process (the phone's browser), unless
``$FAKE_ADB_NO_BROWSER`` is set (a phone whose browser never loads the page).

Run as ``python support_fake_adb.py open URL`` it is that browser process."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

MARKER = "__edgegan_rc="


def write_fake_adb(path, log) -> str:
    """An executable adb client at ``path`` that logs to ``log``; returns its path."""
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {os.path.dirname(__file__)!r})\n"
                    f"import support_fake_adb\nsys.exit(support_fake_adb.adb_main(sys.argv[1:], {str(log)!r}))\n")
    path.chmod(0o755)
    return str(path)


def adb_main(argv: list, log: str) -> int:
    with open(log, "a") as fh:
        fh.write(json.dumps(argv) + "\n")
    if argv[:1] == ["-s"]:
        argv = argv[2:]
    cmd, args = argv[0], argv[1:]
    if cmd == "get-state":
        print("device")
        return 0
    if cmd in ("reverse", "connect"):
        return 0
    if cmd == "push":
        shutil.copyfile(args[0], args[1])
        return 0
    if cmd == "pull":
        shutil.copyfile(args[0], args[1])
        return 0
    if cmd == "shell":
        words = shlex.split(args[0].split("; r=$?;")[0])
        if words[:2] == ["am", "start"]:
            url = words[words.index("-d") + 1]
            if not os.environ.get("FAKE_ADB_NO_BROWSER"):
                p = subprocess.Popen([sys.executable, __file__, "open", url], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                with open(log, "a") as fh:
                    fh.write(json.dumps(["#browser-pid", p.pid]) + "\n")
            print(f"Starting: Intent {{ act=android.intent.action.VIEW dat={url} }}")
            print(f"\n{MARKER}0")
            return 0
        proc = subprocess.run(["sh", "-c", args[0]], capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return 0
    print(f"fake adb: unsupported {cmd}", file=sys.stderr)
    return 1


def open_page(url: str) -> None:
    sys.path.insert(0, os.path.dirname(__file__))
    from playwright.sync_api import sync_playwright

    from support_browser import CHROMIUM, FLAGS, PHONE_DEVICE

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = b.new_context(**p.devices[PHONE_DEVICE]).new_page()
            page.goto(url)
            page.wait_for_function("document.title.startsWith('edgegan: ')", timeout=120_000)
        finally:
            b.close()


if __name__ == "__main__" and sys.argv[1:2] == ["open"]:
    open_page(sys.argv[2])
