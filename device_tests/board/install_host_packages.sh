#!/usr/bin/env bash
# Host packages the emulated aarch64 board needs: qemu-user-static (+ binfmt-support to
# register it), openssh-server (the board's sshd) and adb (the host side of adb:// targets). Idempotent: installs only what is
# missing, so a warm CI rerun spends no time here. Run as root (CI is root).
set -euo pipefail
need=()
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || need+=(binfmt-support)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v adb >/dev/null 2>&1 || need+=(adb)  # the adb client/server for adb:// targets
# shellcheck source=../../scripts/apt_install.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/apt_install.sh"
# not root: not fatal, the ssh / emulated-board tests skip with this reason instead
apt_need "host packages" "the loopback-sshd and emulated-board tests will skip" "${need[@]}" || exit 0
# policy-rc.d keeps the package's postinst from starting a system-wide sshd on port 22
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1
fi
rc=0
apt_install "${need[@]}" || rc=$?
[ "$made_policy" = 1 ] && rm -f "$policy"
exit $rc
