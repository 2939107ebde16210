"""Target URLs -> transports: the registry of schemes (``local``, ``ssh://``, ``adb://``).

Besides URLs, the forms people type at ``ssh`` are accepted as ssh targets: ``user@host[:port]``
and a ``Host`` alias of the ssh config (``~/.ssh/config``, or ``--ssh-config`` /
``$EDGEGAN_SSH_CONFIG``). Kept apart from transport.py so the transport base never imports its
own subclasses."""
from __future__ import annotations

import re
from typing import Callable, Optional

from ..errors import ConfigError
from ..registry import Registry
from .ssh import ssh_config_path
from .transport import TargetOptions, Transport

TransportFactory = Callable[[str, TargetOptions], Transport]
TARGETS: Registry[TransportFactory] = Registry("target scheme")


def _local(url: str, options: TargetOptions) -> Transport:
    from .local import LocalTransport

    return LocalTransport(options)


def _ssh(url: str, options: TargetOptions) -> Transport:
    from .ssh import SSHTransport

    require_target_packages(url)

    return SSHTransport(url, options)


def _adb(url: str, options: TargetOptions) -> Transport:
    from .adb import AdbTransport

    return AdbTransport(url, options)


TARGETS.add("local", _local)
TARGETS.add("ssh", _ssh)
TARGETS.add("adb", _adb)


_USER_AT_HOST = re.compile(r"[^@/\s:]+@[^@/\s:]+(:\d+)?")


def ssh_host_aliases(config: Optional[str] = None) -> set[str]:
    """The literal (wildcard-free, non-negated) names of the ``Host`` lines of the ssh config."""
    path = ssh_config_path(config)
    try:
        text = path.read_text(errors="replace") if path.is_file() else ""
    except OSError:
        return set()
    names: set[str] = set()
    for line in text.splitlines():
        words = line.strip().replace("=", " ", 1).split()
        if len(words) > 1 and words[0].lower() == "host":
            names.update(w for w in words[1:] if not any(c in w for c in "*?!"))
    return names


def normalize_target(target: str, ssh_config: Optional[str] = None) -> str:
    """``local`` and URLs unchanged; ``user@host[:port]`` or an ssh config Host alias ->
    ``ssh://...``; anything else is a ConfigError naming the accepted forms."""
    if target in ("local", "browser") or "://" in target:
        return target
    if _USER_AT_HOST.fullmatch(target) or target in ssh_host_aliases(ssh_config):
        return "ssh://" + target
    raise ConfigError(f"target {target!r} is not a URL, user@host or a Host of {ssh_config_path(ssh_config)}; "
                      "use local, user@host[:port], ssh://user@host[:port] or adb://SERIAL")


def scheme_of(url: str, ssh_config: Optional[str] = None) -> str:
    url = normalize_target(url, ssh_config)
    if url in ("local", "browser"):  # browser: a local headless Chromium (edgegan.web), not a transport
        return url
    return url.split("://", 1)[0]


# scheme -> optional packages its transport needs on the host
PACKAGES = {"ssh": ("paramiko",), "browser": ("playwright",)}


def require_target_packages(url: str, ssh_config: Optional[str] = None) -> None:
    """MissingDependencyError (one line naming the extra) unless this host can open ``url``."""
    from ..util.deps import require

    scheme = scheme_of(url, ssh_config)
    require(*PACKAGES.get(scheme, ()), purpose=f"{scheme}:// targets")


def open_target(url: str, options: TargetOptions | None = None) -> Transport:
    """A connected transport for ``local``, ``ssh://user@host[:port]``, ``user@host[:port]``, an
    ssh config Host alias or ``adb://SERIAL``."""
    options = options or TargetOptions()
    url = normalize_target(url, options.ssh_config)
    return TARGETS.get(scheme_of(url))(url, options)
