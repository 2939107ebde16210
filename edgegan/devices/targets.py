"""Target URLs -> transports: the registry of schemes (``local``, ``ssh://``).

Kept apart from transport.py so the transport base never imports its own subclasses."""
from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from ..registry import Registry
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


TARGETS.add("local", _local)
TARGETS.add("ssh", _ssh)


def scheme_of(url: str) -> str:
    if url == "local":
        return "local"
    if "://" not in url:
        raise ConfigError(f"target {url!r} is not a URL; use local or ssh://user@host[:port]")
    return url.split("://", 1)[0]


# scheme -> optional packages its transport needs on the host
PACKAGES = {"ssh": ("paramiko",)}


def require_target_packages(url: str) -> None:
    """MissingDependencyError (one line naming the extra) unless this host can open ``url``."""
    from ..util.deps import require

    scheme = scheme_of(url)
    require(*PACKAGES.get(scheme, ()), purpose=f"{scheme}:// targets")


def open_target(url: str, options: TargetOptions | None = None) -> Transport:
    """A connected transport for ``local`` or ``ssh://user@host[:port]``."""
    return TARGETS.get(scheme_of(url))(url, options or TargetOptions())
