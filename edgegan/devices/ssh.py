"""The ``ssh://user@host[:port]`` target, over paramiko.

The ssh config (``~/.ssh/config``, ``--ssh-config``) is read like ``ssh`` reads it for HostName,
User, Port and IdentityFile; ProxyJump/ProxyCommand are refused in one line (not supported).

Security defaults: key authentication only (a key file, the agent or ~/.ssh/id_*), the host
key checked against known_hosts — an unknown key is refused unless --accept-new-host-key,
a CHANGED key is always refused. Commands are argv lists quoted with :func:`shlex.join` (an
SSH server takes one command string; quoting every argument is the only safe way to build
it). Robustness: connection timeouts, keepalives, retried connects with backoff, one
reconnect-and-retry for idempotent file operations; a connection lost while a command runs
is a :class:`DeviceConnectionError`, never a silently truncated result.
"""
from __future__ import annotations

import dataclasses
import errno
import getpass
import logging
import os
import posixpath
import shlex
import socket
import time
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from ..errors import ConfigError
from .errors import (DeviceConnectionError, DeviceDiskFullError, DeviceError, DeviceTimeoutError, HostKeyError)
from .transport import BaseTransport, RunResult, TargetOptions, backoff, confined_path

log = logging.getLogger(__name__)
WRAPPER = '"$@"; exit $?'


def parse_ssh_url(url: str) -> tuple[str, str, int]:
    """``ssh://user@host[:port]`` -> (user, host, port); user defaults to the local user."""
    user, host, port = _split_ssh_url(url)
    return user or getpass.getuser(), host, port or 22


def _split_ssh_url(url: str) -> tuple[Optional[str], str, Optional[int]]:
    """(user or None, host, port or None): None where the URL does not say, so the ssh config can."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise ConfigError(f"bad ssh target {url!r}; use ssh://user@host[:port]")
    if parts.password:
        raise ConfigError("passwords in the target URL are not supported; use key authentication (--identity)")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"ssh target {url!r} has a path or query; pass --workdir for the device directory")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"bad port in {url!r}") from None
    return parts.username, parts.hostname, port


@dataclasses.dataclass
class SSHEndpoint:
    """Where to connect after the ssh config: the config's HostName, User, Port and
    IdentityFile fill in what the target does not say (as ``ssh`` does)."""

    alias: str
    hostname: str
    user: str
    port: int
    identity_files: list[str]


SSH_CONFIG_ENV = "EDGEGAN_SSH_CONFIG"


def ssh_config_path(given: Optional[str] = None) -> Path:
    """The ssh config to read: ``given``, else $EDGEGAN_SSH_CONFIG, else ~/.ssh/config."""
    return Path(os.path.expanduser(given or os.environ.get(SSH_CONFIG_ENV) or "~/.ssh/config"))


def resolve_endpoint(url: str, ssh_config: Optional[str] = None) -> SSHEndpoint:
    """The target URL resolved through the ssh config; ProxyJump/ProxyCommand are refused with
    one line (edgegan opens a direct connection only)."""
    import paramiko


    user, alias, port = _split_ssh_url(url)
    path = ssh_config_path(ssh_config)
    entry: dict = {}
    if path.is_file():
        try:
            entry = paramiko.SSHConfig.from_path(str(path)).lookup(alias)
        except (OSError, UnicodeDecodeError, ValueError, paramiko.SSHException) as exc:
            raise ConfigError(f"cannot read ssh config {path} ({type(exc).__name__}: {str(exc)[:120]}); fix it or "
                              "pass another --ssh-config") from None
    for unsupported in ("proxyjump", "proxycommand"):
        if entry.get(unsupported):
            name = {"proxyjump": "ProxyJump", "proxycommand": "ProxyCommand"}[unsupported]
            raise ConfigError(f"{path}: Host {alias} uses {name} {entry[unsupported]}, which edgegan does not support "
                              "(direct connections only); reach the device directly or open a tunnel "
                              "(ssh -L PORT:device:22 jumphost) and target user@127.0.0.1:PORT")
    try:
        port = port or int(entry.get("port", 22))
    except ValueError:
        raise ConfigError(f"{path}: Host {alias} has a bad Port {entry.get('port')!r}") from None
    files = [os.path.expanduser(f) for f in entry.get("identityfile", [])]
    return SSHEndpoint(alias=alias, hostname=entry.get("hostname", alias), user=user or entry.get("user") or
                       getpass.getuser(), port=port, identity_files=[f for f in files if os.path.isfile(f)])


def host_entry(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key) -> str:
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class _UnknownHostKey(Exception):
    def __init__(self, key) -> None:
        super().__init__("unknown host key")
        self.key = key


def _policy(accept_new: bool, known_hosts: Path):
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        """Unknown key: refuse, or (explicitly asked) record it and go on."""

        def missing_host_key(self, client, hostname, key):
            if not accept_new:
                raise _UnknownHostKey(key)
            known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with open(known_hosts, "a") as fh:
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
            client.get_host_keys().add(hostname, key.get_name(), key)
            log.warning("accepted new host key %s for %s into %s", fingerprint(key), hostname, known_hosts)

    return Policy()


class SSHTransport(BaseTransport):
    """paramiko client + lazily opened SFTP channel; reconnects when the connection dropped."""

    def __init__(self, url: str, options: TargetOptions | None = None) -> None:
        self.options = options or TargetOptions()
        if "://" not in url:
            url = "ssh://" + url
        self.endpoint = resolve_endpoint(url, self.options.ssh_config)
        self.user, self.host, self.port = self.endpoint.user, self.endpoint.hostname, self.endpoint.port
        shown = self.endpoint.alias
        self.target = f"ssh://{self.user}@{shown}" + (f":{self.port}" if self.port != 22 else "")
        self.known_hosts = Path(os.path.expanduser(self.options.known_hosts or "~/.ssh/known_hosts"))
        self._client = None
        self._sftp = None
        self._home: Optional[str] = None
        self.connect()

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        import paramiko

        opts = self.options
        if opts.identity and not Path(os.path.expanduser(opts.identity)).is_file():
            raise ConfigError(f"--identity {opts.identity} does not exist; pass the private key file")
        last: Exception | None = None
        for attempt in range(opts.retries + 1):
            client = paramiko.SSHClient()
            if self.known_hosts.is_file():
                try:
                    client.load_host_keys(str(self.known_hosts))
                except (OSError, paramiko.SSHException, UnicodeDecodeError, ValueError) as exc:
                    raise HostKeyError(f"cannot read known_hosts {self.known_hosts} ({type(exc).__name__}: "
                                       f"{str(exc)[:120]}); fix it or pass another --known-hosts") from None
            client.set_missing_host_key_policy(_policy(opts.accept_new_host_key, self.known_hosts))
            try:
                keys = [os.path.expanduser(opts.identity)] if opts.identity else self.endpoint.identity_files or None
                client.connect(self.host, self.port, username=self.user, key_filename=keys,
                               look_for_keys=opts.identity is None, allow_agent=opts.identity is None,
                               timeout=opts.connect_timeout_s, banner_timeout=opts.connect_timeout_s,
                               auth_timeout=opts.connect_timeout_s, channel_timeout=opts.connect_timeout_s)
            except _UnknownHostKey as exc:
                client.close()
                entry = host_entry(self.host, self.port)
                raise HostKeyError(
                    f"host key of {entry} ({fingerprint(exc.key)}) is not in {self.known_hosts}: refused; verify it "
                    f"and add it (ssh-keyscan -p {self.port} {self.host} >> {self.known_hosts}) or pass "
                    "--accept-new-host-key") from None
            except paramiko.BadHostKeyException as exc:
                client.close()
                entry = host_entry(self.host, self.port)
                raise HostKeyError(
                    f"host key of {entry} CHANGED (got {fingerprint(exc.key)}, known_hosts has "
                    f"{fingerprint(exc.expected_key)}): refused — possible man-in-the-middle or a reinstalled device; "
                    f"if you trust it, remove the old key: ssh-keygen -R '{entry}' -f {self.known_hosts}") from None
            except paramiko.AuthenticationException as exc:
                client.close()
                how = (f"key {opts.identity}" if opts.identity else
                       f"IdentityFile {', '.join(self.endpoint.identity_files)} / ssh-agent / ~/.ssh/id_* keys"
                       if self.endpoint.identity_files else "ssh-agent / ~/.ssh/id_* keys")
                raise DeviceConnectionError(f"{self.target} refused authentication with {how} ({exc}); "
                                            "install your public key in the device's authorized_keys or pass --identity") from None
            except (OSError, socket.timeout, EOFError, paramiko.SSHException) as exc:
                client.close()
                last = exc
                if attempt < opts.retries:
                    log.info("connect to %s failed (%s), retrying", self.target, exc)
                    backoff(attempt)
                    continue
                break
            tr = client.get_transport()
            tr.set_keepalive(5)
            self._client, self._sftp = client, None
            return
        tries = opts.retries + 1
        raise DeviceConnectionError(f"cannot connect to {self.target} after {tries} attempt{'s' if tries != 1 else ''} "
                                    f"({type(last).__name__}: {last}); check the device is on and sshd runs, or "
                                    "raise --connect-timeout") from None

    def alive(self) -> bool:
        tr = self._client.get_transport() if self._client else None
        return bool(tr and tr.is_active())

    def _ensure(self):
        if not self.alive():
            log.info("connection to %s is down; reconnecting", self.target)
            self.close()
            self.connect()
        return self._client

    def close(self) -> None:
        for obj in (self._sftp, self._client):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may raise anything
                pass
        self._sftp = self._client = None

    # ------------------------------------------------------------------ commands
    def run(self, argv: list, timeout: float = 600.0, stdin: bytes | None = None) -> RunResult:
        import paramiko

        argv = [str(a) for a in argv]
        # a constant wrapper, argv passed as positional parameters: the shell does not exec the
        # command, so a crash by signal comes back as exit code 128+N (paramiko ignores exit-signal)
        command = shlex.join(["sh", "-c", WRAPPER, "sh", *argv])
        t0 = time.monotonic()
        for attempt in range(2):
            client = self._ensure()
            try:
                chan = client.get_transport().open_session(timeout=self.options.connect_timeout_s)
                chan.exec_command(command)
                break
            except (paramiko.SSHException, OSError, EOFError) as exc:  # could not even start: safe to retry
                self.close()
                if attempt == 1:
                    raise DeviceConnectionError(f"cannot start `{argv[0]}` on {self.target} ({exc}); "
                                                "the connection keeps dropping") from None
        out, err = bytearray(), bytearray()
        try:
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            chan.settimeout(0.2)
            deadline = t0 + timeout
            while True:
                got = False
                while chan.recv_ready():
                    out += chan.recv(65536)
                    got = True
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                    got = True
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                if not self.alive() or (chan.closed and not chan.exit_status_ready()):
                    raise DeviceConnectionError(
                        f"connection to {self.target} lost while running `{shlex.join(argv[:3])}`; "
                        "its result is discarded")
                if time.monotonic() > deadline:
                    chan.close()
                    raise DeviceTimeoutError(f"`{shlex.join(argv[:3])}` ran over {timeout:.0f} s on {self.target} and "
                                             "was abandoned; raise --timeout or use fewer --runs")
                if not got:
                    time.sleep(0.02)
            code = chan.recv_exit_status()
        except (socket.error, EOFError, paramiko.SSHException) as exc:
            raise DeviceConnectionError(f"connection to {self.target} lost while running `{argv[0]}` ({exc}); "
                                        "its result is discarded") from None
        finally:
            chan.close()
        if code == -1:  # the channel closed without an exit status
            if not self.alive():
                raise DeviceConnectionError(f"{self.target} closed the session running `{argv[0]}` without an exit "
                                            "status (sshd killed?); its result is discarded")
            err += b"\n(the device ended the session without an exit status: killed by a signal?)"
        return RunResult(argv, code, out.decode(errors="replace"), err.decode(errors="replace"),
                         time.monotonic() - t0)

    # ------------------------------------------------------------------ files
    def sftp(self):
        import paramiko

        if self._sftp is None or not self.alive():
            client = self._ensure()
            try:
                self._sftp = client.open_sftp()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise DeviceConnectionError(f"cannot open SFTP on {self.target} ({exc}); the device's sshd needs "
                                            "the sftp subsystem (openssh-sftp-server)") from None
            self._sftp.get_channel().settimeout(max(self.options.connect_timeout_s, 60.0))
        return self._sftp

    def _file_op(self, what: str, fn):
        """Run an idempotent SFTP operation, reconnecting once if the connection dropped."""
        import paramiko

        for attempt in range(2):
            try:
                return fn(self.sftp())
            except (EOFError, OSError, paramiko.SSHException) as exc:
                if self.alive():  # a file error (missing, permission, disk full), not a dropped link
                    raise
                self.close()
                if attempt == 1:
                    raise DeviceConnectionError(f"connection to {self.target} lost during {what} ({exc})") from None
                log.info("connection lost during %s; reconnecting", what)

    def push(self, local: Path, remote: str) -> None:
        local = Path(local)
        part = remote + ".part"
        size = local.stat().st_size

        def op(sftp):
            sftp.put(str(local), part, confirm=True)
            sftp.posix_rename(part, remote)

        try:
            self._file_op(f"push {local.name}", op)
        except (IOError, OSError) as exc:
            if isinstance(exc, DeviceError):
                raise
            self._cleanup_part(part)
            full = self.disk_full_error(remote, size)
            if full is not None or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                raise full or DeviceDiskFullError(f"disk full on {self.target} writing {remote}; free space or pass "
                                                  "--workdir on a bigger disk") from None
            raise DeviceError(f"cannot write {remote} on {self.target} ({exc}); check --workdir is writable") from None

    def _cleanup_part(self, part: str) -> None:
        try:
            self.sftp().remove(part)
        except Exception:  # noqa: BLE001 - best effort
            pass

    def pull(self, remote: str, local_dir: Path, name: str | None = None) -> Path:
        dest = confined_path(Path(local_dir), posixpath.basename(remote) if name is None else name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name("." + dest.name + ".part")
        try:
            self._file_op(f"pull {posixpath.basename(remote)}", lambda sftp: sftp.get(remote, str(part)))
            os.replace(part, dest)
        except FileNotFoundError:
            part.unlink(missing_ok=True)
            raise DeviceError(f"{remote} does not exist on {self.target}; the runner did not write it") from None
        except (IOError, OSError) as exc:
            part.unlink(missing_ok=True)
            if isinstance(exc, DeviceError):
                raise
            raise DeviceError(f"cannot pull {remote} from {self.target} ({exc})") from None
        return dest

    def size(self, remote: str) -> Optional[int]:
        def op(sftp):
            try:
                return sftp.stat(remote).st_size
            except FileNotFoundError:
                return None

        return self._file_op(f"stat {remote}", op)

    def home(self) -> str:
        if self._home is None:
            self._home = self._file_op("home directory", lambda sftp: sftp.normalize("."))
        return self._home

    def default_workdir(self) -> str:
        return posixpath.join(self.home(), ".edgegan")

    def default_python(self) -> str:
        return "python3"
