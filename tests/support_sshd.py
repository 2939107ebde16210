"""A real OpenSSH sshd on 127.0.0.1 with generated host and user keys, for tests.

Why real: the SSH transport's promises (host-key refusal, exit codes, dropped connections,
confined pulls) only mean something against a real server. Needs /usr/sbin/sshd and
ssh-keygen (Debian: openssh-server, installed by device_tests/board/install_host_packages.sh);
:func:`sshd_missing` says why when they are absent so tests can skip with the reason.
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

SSHD = "/usr/sbin/sshd"


def sshd_missing() -> Optional[str]:
    """None if a loopback sshd can run here, else the reason."""
    if not os.path.exists(SSHD):
        return f"{SSHD} not installed (apt-get install openssh-server, or run device_tests/board/install_host_packages.sh)"
    if not shutil.which("ssh-keygen"):
        return "ssh-keygen not installed (apt-get install openssh-client)"
    if os.geteuid() != 0:
        return "a loopback sshd that logs in as this user needs root (sshd privilege separation)"
    return None


def keygen(path: Path, comment: str = "edgegan-test") -> Path:
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """All descendants of ``pid`` (from /proc), deepest last."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class LoopbackSSHD:
    """``with LoopbackSSHD(tmpdir) as d: d.url, d.identity, d.known_hosts``."""

    def __init__(self, root: Path, force_command: str | None = None, user: str | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.force_command = force_command
        self.user = user or getpass.getuser()
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.host_key = keygen(self.root / "host_ed25519", "edgegan-test-host")
        self.identity = keygen(self.root / "user_ed25519", "edgegan-test-user")
        self.authorized = self.root / "authorized_keys"
        shutil.copy(self.root / "user_ed25519.pub", self.authorized)
        self.known_hosts = self.root / "known_hosts"

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def host_key_line(self) -> str:
        kind, b64 = (self.root / "host_ed25519.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {b64}\n"

    def config(self) -> Path:
        cfg = self.root / "sshd_config"
        lines = [
            "ListenAddress 127.0.0.1", f"Port {self.port}", f"HostKey {self.host_key}",
            f"PidFile {self.root / 'sshd.pid'}", f"AuthorizedKeysFile {self.authorized}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no", "X11Forwarding no",
            "AllowTcpForwarding no", "PrintMotd no", "Subsystem sftp /usr/lib/openssh/sftp-server",
            "MaxStartups 50", "LogLevel ERROR",
        ]
        if self.force_command:
            lines.append(f"ForceCommand {self.force_command}")
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    def start(self, port: int = 0) -> "LoopbackSSHD":
        self.port = port or self.port or free_port()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        cfg = self.config()
        check = subprocess.run([SSHD, "-t", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd -t rejected the test config: {check.stderr.strip()}")
        log = open(self.root / "sshd.log", "ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {(self.root / 'sshd.log').read_text()[-500:]}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"sshd did not listen on 127.0.0.1:{self.port}")
        self.known_hosts.write_text(self.host_key_line())
        return self

    def kill_all(self) -> None:
        """Kill sshd AND every session it spawned (SIGKILL): the device vanishes mid-command."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        kids = _children(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for pid in kids:  # per-connection sshd processes outlive the listener
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.proc = None

    def __enter__(self) -> "LoopbackSSHD":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
