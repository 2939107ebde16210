"""The connection options every device-facing command shares (profile, benchmark, device, demo
pi), as argparse arguments and as the `TargetOptions` they become. Here, not in the CLI package,
so the demos (library code) take the same options without importing `edgegan.cli`."""
from __future__ import annotations

import argparse

TARGET_HELP = "local, ssh://user@host[:port], user@host[:port], a Host of your ssh config or adb://SERIAL"


def add_target_arguments(p: argparse.ArgumentParser, title: str = "target connection") -> None:
    g = p.add_argument_group(title)
    g.add_argument("--identity", "-i", help="ssh private key file (default: ssh-agent and ~/.ssh/id_*)")
    g.add_argument("--known-hosts", help="known_hosts file to check the host key against (default ~/.ssh/known_hosts)")
    g.add_argument("--accept-new-host-key", action="store_true",
                   help="trust an UNKNOWN host key and record it in known_hosts (a CHANGED key is always refused)")
    g.add_argument("--connect-timeout", type=float, default=15.0, help="seconds to connect (default 15)")
    g.add_argument("--retries", type=int, default=2, help="reconnect attempts after a dropped connection (default 2)")
    g.add_argument("--workdir", help="edgegan's directory on the device (default ~/.edgegan)")
    g.add_argument("--python", help="python on the device that runs the runner (default: the setup venv, else python3)")
    g.add_argument("--ssh-config", help="ssh config whose Host entries (HostName, User, Port, IdentityFile) apply to "
                                        "the target (default: $EDGEGAN_SSH_CONFIG, else ~/.ssh/config)")


def target_options(args: argparse.Namespace):
    from .transport import TargetOptions

    return TargetOptions(identity=args.identity, known_hosts=args.known_hosts,
                         accept_new_host_key=args.accept_new_host_key, connect_timeout_s=args.connect_timeout,
                         retries=args.retries, workdir=args.workdir, python=args.python,
                         ssh_config=args.ssh_config)
