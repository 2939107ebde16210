#!/usr/bin/env python3
"""An adb device on this machine: Debian's arm64 adbd (bookworm-backports, the Linux build of
Android's adbd) run under qemu-user, chrooted into the emulated board's rootfs, inside its own
network namespace, with a private adb server in the same namespace.

Why: CI has no phone and no Android emulator. This adbd speaks the real adb protocol
(connect / shell / push / pull / shell_v2 exit codes) to Debian's real adb client, so the
``adb://`` transport is tested end to end; it is NOT Android (no getprop, no dumpsys, no
battery). The network namespace keeps its unauthenticated root adbd off the machine's
loopback; the host reaches the namespace's adb server through a filesystem unix socket
(``ADB_SERVER_SOCKET=localfilesystem:...``), which crosses namespaces. The rootfs is the
board's own (board.py), so a venv set up over ssh is there for adb too.

    python3 device_tests/board/adb_device.py start   # prints target + ADB_SERVER_SOCKET; Ctrl-C stops it

Stdlib only; root (chroot, namespaces).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from board import KEYRING, MIRROR, QEMU_CPU, Board, cache_root, descendants, log, run  # noqa: E402

ADBD_PACKAGE = "adbd"
ADBD_SUITE = "bookworm-backports"  # adbd is packaged for Debian 12 only in backports
ADBD_PORT = 5700  # outside the 5555-5585 range the adb server scans for emulators
ADBD_DIR = "/run/edgegan-adbd"  # where the overlay is bind-mounted inside the rootfs
LIBS = f"{ADBD_DIR}/usr/lib/aarch64-linux-gnu/android:{ADBD_DIR}/usr/lib/aarch64-linux-gnu"


class AdbDevice:
    """The adbd overlay (cached) + one running namespace (adb server + adbd)."""

    def __init__(self, board: Board | None = None) -> None:
        self.board = board or Board()
        self.overlay_root = cache_root() / f"adbd-arm64-{self.board.root.name}"
        self.overlay = self.overlay_root / "overlay"
        self.state_dir: Path | None = None
        self.server: subprocess.Popen | None = None
        self.adbd: subprocess.Popen | None = None

    # ------------------------------------------------------------------ build
    def build(self) -> "AdbDevice":
        """The board, then adbd + the libraries the board's rootfs lacks, unpacked into an
        overlay directory (the board's rootfs stays as board.py made it)."""
        self.board.build()
        if not shutil.which("adb"):
            raise SystemExit("[adb] no adb client on the host: apt install adb (make host-packages)")
        if (self.overlay_root / "READY").exists():
            return self
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="edgegan-adbd-apt-") as tmp:
            apt = self.board._apt(Path(tmp))
            with open(Path(tmp) / "sources.list", "a") as fh:
                fh.write(f"deb [arch=arm64{KEYRING}] {MIRROR} {ADBD_SUITE} main\n")
            run(apt + ["update"])
            run(apt + ["install", "-y", "--download-only", "-t", ADBD_SUITE, ADBD_PACKAGE])
            sim = run(apt + ["install", "-y", "-s", "-t", ADBD_SUITE, ADBD_PACKAGE]).stdout
        tmp_overlay = self.overlay_root / "overlay.partial"
        shutil.rmtree(tmp_overlay, ignore_errors=True)
        tmp_overlay.mkdir(parents=True)
        for line in sim.splitlines():
            if not line.startswith("Inst "):
                continue
            name, version = line.split()[1], line.split()[2].strip("()[]").replace(":", "%3a")
            if (self.board.rootfs / "usr" / "share" / "doc" / name).exists():
                continue  # already in the board (same bookworm library)
            debs = list(self.board.debs.glob(f"{name}_{version}_*.deb"))
            if not debs:
                raise SystemExit(f"[adb] apt resolved {name} {version} but no .deb is in {self.board.debs}")
            run(["dpkg-deb", "-x", debs[0], tmp_overlay])
        if not (tmp_overlay / "usr/lib/android-sdk/platform-tools/adbd").exists():
            raise SystemExit("[adb] the adbd package has no usr/lib/android-sdk/platform-tools/adbd")
        shutil.rmtree(self.overlay, ignore_errors=True)
        os.replace(tmp_overlay, self.overlay)
        (self.overlay_root / "READY").write_text(json.dumps({"seconds": round(time.time() - t0, 1)}))
        log(f"adbd overlay built in {time.time() - t0:.1f} s at {self.overlay}")
        return self

    # ------------------------------------------------------------------ run
    @property
    def socket(self) -> str:
        assert self.state_dir is not None
        return f"localfilesystem:{self.state_dir / 'adb.sock'}"

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{ADBD_PORT}"

    def env(self) -> dict:
        """What a host process needs to reach this device's adb server."""
        return {"ADB_SERVER_SOCKET": self.socket}

    def adb(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(["adb", *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env()}, stdin=subprocess.DEVNULL)

    def start(self) -> dict:
        """Namespace + adb server (its holder process), then adbd, then `adb connect`."""
        self.state_dir = Path(tempfile.mkdtemp(prefix="edgegan-adb-"))
        R = self.board.rootfs
        script = f"""set -e
ip link set lo up
hostname edgegan-adb-board
mount -t proc proc "{R}/proc"
mount --bind "{R}/etc/edgegan-board/cpuinfo" "{R}/proc/cpuinfo"
mount --rbind /dev "{R}/dev"
mount --rbind -o ro /sys "{R}/sys" 2>/dev/null || mount --rbind /sys "{R}/sys"
mkdir -p "{R}{ADBD_DIR}"
mount --bind "{self.overlay}" "{R}{ADBD_DIR}"
exec adb -L "{self.socket}" server nodaemon
"""
        logf = open(self.state_dir / "server.log", "ab")
        # HOME: the server's adbkey lives in the state dir, not in the user's ~/.android
        self.server = subprocess.Popen(["unshare", "--net", "--mount", "--uts", "--propagation", "private",
                                        "sh", "-c", script], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                       start_new_session=True, env={**os.environ, "HOME": str(self.state_dir)})
        deadline = time.time() + 20
        while not (self.state_dir / "adb.sock").exists():
            if self.server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"[adb] the namespace's adb server did not start; see {self.state_dir / 'server.log'}")
            time.sleep(0.1)
        self.start_adbd()
        return {"target": f"adb://{self.serial}", "serial": self.serial, "env": self.env(),
                "state_dir": str(self.state_dir), "server_pid": self.server.pid}

    def start_adbd(self) -> None:
        """adbd inside the namespace (nsenter), under qemu via the rootfs' own loader."""
        assert self.server is not None and self.state_dir is not None
        emu = run(["qemu-aarch64-static", "--version"]).stdout.split()[2]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root", "LANG": "C.UTF-8",
               "QEMU_CPU": QEMU_CPU, "EDGEGAN_EMULATOR": f"qemu-user {emu} cpu={QEMU_CPU}", "ADBD_PORT": str(ADBD_PORT)}
        logf = open(self.state_dir / "adbd.log", "ab")
        self.adbd = subprocess.Popen(
            ["nsenter", "-t", str(self.server.pid), "--net", "--mount", "--uts", "chroot", str(self.board.rootfs),
             "/lib/ld-linux-aarch64.so.1", "--library-path", LIBS, f"{ADBD_DIR}/usr/lib/android-sdk/platform-tools/adbd"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True, env=env, cwd="/")
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.adbd.poll() is not None:
                raise SystemExit(f"[adb] adbd exited {self.adbd.returncode}; see {self.state_dir / 'adbd.log'}")
            self.adb("connect", self.serial)
            if self.adb("-s", self.serial, "get-state").stdout.strip() == "device":
                return
            time.sleep(0.5)
        raise SystemExit(f"[adb] adbd on {self.serial} did not become 'device' in 60 s; see {self.state_dir}")

    def kill_adbd(self) -> None:
        """SIGKILL adbd and every shell under it: the device vanishes mid-run."""
        if self.adbd is None:
            return
        for pid in [self.adbd.pid, *descendants(self.adbd.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.adbd.wait(timeout=30)
        self.adbd = None

    def stop(self) -> None:
        self.kill_adbd()
        if self.server is not None:
            for pid in [self.server.pid, *descendants(self.server.pid)]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.server.wait(timeout=30)
            self.server = None
        if self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["build", "start"])
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("[adb] needs root (chroot, namespaces)", file=sys.stderr)
        return 1
    dev = AdbDevice().build()
    if args.command == "start":
        st = dev.start()
        print(json.dumps(st, indent=2), flush=True)
        print("[adb] running; Ctrl-C stops it", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            dev.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
