#!/usr/bin/env python3
"""An emulated aarch64 board on this machine: arm64 Debian rootfs + qemu-user + a real sshd.

Why: CI has no Raspberry Pi. A board here is an arm64 root filesystem (Debian bookworm
packages unpacked from their .debs, no debootstrap) whose programs run through qemu-user
(binfmt_misc), reached through a real OpenSSH sshd on 127.0.0.1 with its own host and user
keys. Every session of that sshd is forced (ForceCommand) into a private mount namespace that
chroots into the rootfs, so `ssh` to it behaves like ssh to a board: `uname -m` says aarch64,
/proc/cpuinfo describes a Cortex-A76, and the python3 there is the arm64 build.

    python3 device_tests/board/board.py build    # cached under ~/.cache/edgegan/board (cold ~1 min)
    python3 device_tests/board/board.py start    # prints the target URL + the ssh options
    python3 device_tests/board/board.py stop
    python3 device_tests/board/board.py start --suite trixie   # Debian 13: python3.13 (ExecuTorch's
                                                               # numpy-only runtime needs >= 3.12)

Traps handled (see docs/devices.md): qemu 7.2 needs QEMU_CPU=cortex-a76 for bit-exact int8
and an ARM /proc/cpuinfo for onnxruntime to import. The runtimes are NOT baked in: `edgegan
device setup --download-wheels` installs them, as it would on an offline board. Stdlib only;
run as root (chroot, mount namespaces, binfmt registration).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOARD_VERSION = 4  # bump when the rootfs recipe changes: a new cache key, a fresh build
SUITE = "bookworm"  # the default board (Python 3.11, as Raspberry Pi OS 12)
SUITES = ("bookworm", "trixie")  # trixie: Python 3.13, for runtimes with no 3.11 wheels (executorch-numpy-runtime)
MIRROR = os.environ.get("EDGEGAN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY = os.environ.get("EDGEGAN_DEBIAN_SECURITY", "http://deb.debian.org/debian-security")
# what a Raspberry Pi OS Lite-like board has that the runner + setup need
PACKAGES = [
    "base-files", "bash", "dash", "coreutils", "libc-bin", "grep", "sed", "tar", "gzip", "findutils",
    "python3", "python3-venv", "libstdc++6", "libgcc-s1", "openssh-sftp-server", "procps",
]
# trixie's pip (Debian-patched) loads the system CA bundle at import, even with --no-index
EXTRA_PACKAGES = {"trixie": ["ca-certificates"]}
QEMU_CPU = "cortex-a76"
_KR = "/usr/share/keyrings/debian-archive-keyring.gpg"
KEYRING = f" signed-by={_KR}" if os.path.exists(_KR) else ""


def log(msg: str) -> None:
    print(f"[board] {msg}", file=sys.stderr, flush=True)


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    """Run argv (never a shell string); a non-zero exit raises with the tail of stderr."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    proc = subprocess.run([str(a) for a in argv], **kw)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        raise SystemExit(f"[board] `{' '.join(map(str, argv[:4]))} ...` exited {proc.returncode}: " + " | ".join(tail))
    return proc


def cache_root() -> Path:
    base = os.environ.get("EDGEGAN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgegan")
    return Path(base) / "board"


def packages(suite: str) -> list:
    return PACKAGES + EXTRA_PACKAGES.get(suite, [])


def recipe_key(suite: str = SUITE) -> str:
    text = json.dumps([BOARD_VERSION, suite, packages(suite), QEMU_CPU])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Board:
    """Paths of one cached board; ``build``/``start``/``stop`` are idempotent."""

    def __init__(self, root: Path | None = None, suite: str = SUITE) -> None:
        if suite not in SUITES:
            raise SystemExit(f"[board] suite {suite!r} is not one of {SUITES}")
        self.suite = suite
        self.root = Path(root) if root else cache_root() / f"{suite}-arm64-{recipe_key(suite)}"
        self.rootfs = self.root / "rootfs"
        self.keys = self.root / "keys"
        # one .deb cache per suite: apt picks by version, but a wrong-suite fallback must not exist
        self.debs = cache_root() / ("debs-arm64" if suite == SUITE else f"debs-arm64-{suite}")
        self.ready = self.root / "READY"
        self.state = self.root / "sshd.json"

    # ------------------------------------------------------------------ host prerequisites
    def host_packages(self) -> None:
        run(["bash", HERE / "install_host_packages.sh"], stdout=None, stderr=None)

    def binfmt(self) -> None:
        """Register qemu-aarch64 with binfmt_misc (flag F: works inside the chroot)."""
        mnt = Path("/proc/sys/fs/binfmt_misc")
        if not (mnt / "status").exists():
            run(["mount", "-t", "binfmt_misc", "binfmt_misc", mnt])
        if not (mnt / "qemu-aarch64").exists():
            if shutil.which("update-binfmts"):
                run(["update-binfmts", "--enable", "qemu-aarch64"])
            if not (mnt / "qemu-aarch64").exists():
                interp = shutil.which("qemu-aarch64-static") or "/usr/bin/qemu-aarch64-static"
                magic = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
                mask = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
                (mnt / "register").write_text(f":qemu-aarch64:M::{magic}:{mask}:{interp}:F")
        if "enabled" not in (mnt / "qemu-aarch64").read_text():
            raise SystemExit("[board] binfmt qemu-aarch64 is registered but disabled; run update-binfmts --enable qemu-aarch64")

    # ------------------------------------------------------------------ rootfs
    def _apt(self, work: Path) -> list:
        (work / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.debs / "partial").mkdir(parents=True, exist_ok=True)
        (work / "parts").mkdir(exist_ok=True)
        (work / "status").write_text("")
        (work / "sources.list").write_text(
            f"deb [arch=arm64{KEYRING}] {MIRROR} {self.suite} main\n"
            f"deb [arch=arm64{KEYRING}] {MIRROR} {self.suite}-updates main\n"
            f"deb [arch=arm64{KEYRING}] {SECURITY} {self.suite}-security main\n")
        return ["apt-get", "-q", "-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64",
                "-o", f"Dir::Etc::SourceList={work / 'sources.list'}", "-o", f"Dir::Etc::SourceParts={work / 'parts'}",
                "-o", f"Dir::State::Lists={work / 'lists'}", "-o", f"Dir::State::status={work / 'status'}",
                "-o", f"Dir::Cache={work}", "-o", f"Dir::Cache::archives={self.debs}",
                "-o", "Debug::NoLocking=1", "-o", "APT::Install-Recommends=false"]

    def download_debs(self) -> list[Path]:
        """The arm64 dependency closure of PACKAGES, resolved by apt against an empty dpkg
        status in a private apt config (the host's /etc/apt and dpkg stay untouched)."""
        with tempfile.TemporaryDirectory(prefix="edgegan-apt-") as tmp:
            apt = self._apt(Path(tmp))
            run(apt + ["update"])
            run(apt + ["install", "-y", "--download-only", *packages(self.suite)])
            # the closure apt chose (names + versions), to pick the right cached .deb files
            sim = run(apt + ["install", "-y", "-s", *packages(self.suite)]).stdout
            names = [ln.split()[1] for ln in sim.splitlines() if ln.startswith("Inst ")]
            versions = {ln.split()[1]: ln.split()[2].strip("()[]") for ln in sim.splitlines() if ln.startswith("Inst ")}
        debs = []
        for name in names:
            pkg = name.split(":")[0]
            cands = sorted(self.debs.glob(f"{pkg}_*_arm64.deb")) + sorted(self.debs.glob(f"{pkg}_*_all.deb"))
            ver = versions.get(name, "").replace(":", "%3a")
            pick = [c for c in cands if f"_{ver}_" in c.name] or cands
            if not pick:
                raise SystemExit(f"[board] apt resolved {name} but no .deb for it is in {self.debs}")
            debs.append(pick[-1])
        return debs

    def unpack(self, debs: list[Path], rootfs: Path) -> None:
        for deb in debs:
            run(["dpkg-deb", "-x", deb, rootfs])
        # merged /usr, as a bookworm debootstrap makes it
        for d in ("bin", "sbin", "lib"):
            top, usr = rootfs / d, rootfs / "usr" / d
            usr.mkdir(parents=True, exist_ok=True)
            if top.is_dir() and not top.is_symlink():
                for item in top.iterdir():
                    dest = usr / item.name
                    if dest.is_dir() and item.is_dir() and not item.is_symlink():
                        run(["cp", "-a", f"{item}/.", dest])
                        shutil.rmtree(item)
                    else:
                        if dest.exists() or dest.is_symlink():
                            dest.unlink() if not dest.is_dir() or dest.is_symlink() else shutil.rmtree(dest)
                        os.replace(item, dest)
                top.rmdir()
            if not top.is_symlink():
                top.symlink_to(f"usr/{d}")
        for d in ("proc", "sys", "dev", "tmp", "root", "run", "var/tmp", "home"):
            (rootfs / d).mkdir(parents=True, exist_ok=True)
        os.chmod(rootfs / "tmp", 0o1777)
        os.chmod(rootfs / "var" / "tmp", 0o1777)
        os.chmod(rootfs / "root", 0o700)
        (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
        (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
        (rootfs / "etc" / "hostname").write_text("edgegan-board\n")
        self.ca_bundle(rootfs)
        (rootfs / "etc" / "ld.so.conf.d").mkdir(parents=True, exist_ok=True)
        # an ARM /proc/cpuinfo (bind-mounted over the host's in every session): onnxruntime's
        # cpuinfo segfaults on an x86 one under qemu 7.2
        (rootfs / "etc" / "edgegan-board").mkdir(exist_ok=True)
        (rootfs / "etc" / "edgegan-board" / "cpuinfo").write_text(cortex_a76_cpuinfo(os.cpu_count() or 1))
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "QEMU_CPU": QEMU_CPU}
        run(["chroot", rootfs, "/sbin/ldconfig"], env=env)
        out = run(["chroot", rootfs, "/usr/bin/python3", "-c", "import platform, sys; print(platform.machine(), sys.version.split()[0])"], env=env).stdout
        if not out.startswith("aarch64"):
            raise SystemExit(f"[board] python3 in the rootfs reports {out.strip()!r}, expected aarch64")
        log(f"rootfs python3: {out.strip()}")

    @staticmethod
    def ca_bundle(rootfs: Path) -> None:
        """/etc/ssl/certs/ca-certificates.crt as ca-certificates' postinst (update-ca-certificates)
        would write it; unpacking .debs runs no maintainer scripts."""
        src = rootfs / "usr" / "share" / "ca-certificates"
        dest = rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt"
        if not src.is_dir() or dest.exists():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("".join(p.read_text() for p in sorted(src.rglob("*.crt"))))

    def build(self) -> "Board":
        """Everything the board needs; a no-op (seconds) when the cache is complete."""
        t0 = time.time()
        self.host_packages()
        self.binfmt()
        if self.ready.exists() and self.rootfs.is_dir():
            log(f"cached board at {self.root} ({time.time() - t0:.1f} s)")
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        log("resolving + downloading arm64 .debs")
        debs = self.download_debs()
        log(f"unpacking {len(debs)} .debs")
        tmp = self.root / "rootfs.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.unpack(debs, tmp)
        shutil.rmtree(self.rootfs, ignore_errors=True)
        os.replace(tmp, self.rootfs)
        self.make_keys()
        self.ready.write_text(json.dumps({"built": time.time(), "seconds": round(time.time() - t0, 1)}))
        log(f"board built in {time.time() - t0:.1f} s at {self.root}")
        return self

    # ------------------------------------------------------------------ sshd
    def make_keys(self) -> None:
        self.keys.mkdir(parents=True, exist_ok=True)
        os.chmod(self.keys, 0o700)
        for name in ("host_ed25519", "user_ed25519"):
            if not (self.keys / name).exists():
                run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"edgegan-board-{name}", "-f", self.keys / name])
        shutil.copy(self.keys / "user_ed25519.pub", self.keys / "authorized_keys")

    def session_script(self) -> Path:
        """The ForceCommand: a private mount namespace, /proc + /dev + /sys + the ARM cpuinfo
        inside the rootfs, then the client's command run by the board's own /bin/sh."""
        path = self.root / "board-session.sh"
        path.write_text(f"""#!/bin/sh
# generated by device_tests/board/board.py: every ssh session enters the emulated board
set -e
exec unshare --mount --uts --propagation private /bin/sh -c '
set -e
R="$1"
echo edgegan-board > /proc/sys/kernel/hostname
mount -t proc proc "$R/proc"
mount --bind "$R/etc/edgegan-board/cpuinfo" "$R/proc/cpuinfo"
mount --rbind /dev "$R/dev"
mount --rbind -o ro /sys "$R/sys" 2>/dev/null || mount --rbind /sys "$R/sys"
export QEMU_CPU={QEMU_CPU} EDGEGAN_EMULATOR="qemu-user $(qemu-aarch64-static --version | head -n1 | cut -d" " -f3) cpu={QEMU_CPU}"
export HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8
cd "$R/root"
if [ -z "$SSH_ORIGINAL_COMMAND" ]; then exec chroot "$R" /bin/sh -c "cd /root; exec /bin/sh -i"; fi
case "$SSH_ORIGINAL_COMMAND" in
  */sftp-server|internal-sftp) exec chroot "$R" /bin/sh -c "cd /root; exec /usr/lib/openssh/sftp-server" ;;
esac
exec chroot "$R" /bin/sh -c "cd /root; exec /bin/sh -c \\"\\$1\\"" sh "$SSH_ORIGINAL_COMMAND"
' sh "{self.rootfs}"
""")
        os.chmod(path, 0o755)
        return path

    def sshd_config(self, port: int) -> Path:
        cfg = self.root / "sshd_config"
        cfg.write_text(f"""# generated by device_tests/board/board.py
ListenAddress 127.0.0.1
Port {port}
HostKey {self.keys / 'host_ed25519'}
PidFile {self.root / 'sshd.pid'}
AuthorizedKeysFile {self.keys / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
Subsystem sftp /usr/lib/openssh/sftp-server
ForceCommand {self.session_script()}
LogLevel ERROR
""")
        return cfg

    def status(self) -> dict | None:
        if not self.state.exists():
            return None
        st = json.loads(self.state.read_text())
        try:
            os.kill(st["pid"], 0)
        except OSError:
            return None
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", st["port"])) != 0:
                return None
        return st

    def start(self, port: int = 0) -> dict:
        """Start the board's sshd (or return the running one): target URL, key, known_hosts."""
        if not self.ready.exists():
            raise SystemExit(f"[board] no board at {self.root}; run `board.py build` first")
        st = self.status()
        if st and (port == 0 or st["port"] == port):
            return st
        self.stop()
        self.make_keys()
        if port == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation dir
        cfg = self.sshd_config(port)
        run(["/usr/sbin/sshd", "-t", "-f", cfg])
        logf = open(self.root / "sshd.log", "ab")
        proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=logf, start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                raise SystemExit(f"[board] sshd exited {proc.returncode}; see {self.root / 'sshd.log'}")
            time.sleep(0.1)
        else:
            proc.kill()
            raise SystemExit(f"[board] sshd did not listen on 127.0.0.1:{port} within 10 s")
        pub = (self.keys / "host_ed25519.pub").read_text().split()
        known = self.keys / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
        st = {"pid": proc.pid, "port": port, "target": f"ssh://root@127.0.0.1:{port}",
              "identity": str(self.keys / "user_ed25519"), "known_hosts": str(known),
              "rootfs": str(self.rootfs)}
        self.state.write_text(json.dumps(st, indent=2))
        return st

    def kill_all(self) -> None:
        """SIGKILL the board's sshd and every session under it: the board vanishes mid-run."""
        st = json.loads(self.state.read_text()) if self.state.exists() else None
        if not st:
            return
        for pid in [st["pid"], *descendants(st["pid"])]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.state.unlink(missing_ok=True)

    def stop(self) -> None:
        st = json.loads(self.state.read_text()) if self.state.exists() else None
        if st:
            kids = descendants(st["pid"])
            try:
                os.kill(st["pid"], signal.SIGTERM)
                for _ in range(50):
                    os.kill(st["pid"], 0)
                    time.sleep(0.05)
            except OSError:
                pass
            for pid in kids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            self.state.unlink(missing_ok=True)


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    kids.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cortex_a76_cpuinfo(cores: int) -> str:
    """/proc/cpuinfo as an arm64 kernel prints it for Cortex-A76 cores (as on a Pi 5)."""
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\n"
             "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n"
             "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n")
    return "".join(block.format(i=i) for i in range(cores)) + \
        "Hardware\t: edgegan emulated board (qemu-user, Cortex-A76)\nModel\t\t: edgegan emulated aarch64 board\n"


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["build", "start", "stop", "status", "rebuild"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--suite", choices=SUITES, default=SUITE, help="Debian release of the rootfs (default %(default)s)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("[board] needs root (chroot, mount namespaces, binfmt_misc)", file=sys.stderr)
        return 1
    board = Board(suite=args.suite)
    if args.command == "rebuild":
        board.stop()
        board.ready.unlink(missing_ok=True)
        args.command = "build"
    if args.command == "build":
        board.build()
    elif args.command == "start":
        board.build()
        print(json.dumps(board.start(args.port), indent=2))
    elif args.command == "stop":
        board.stop()
    elif args.command == "status":
        print(json.dumps(board.status(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
