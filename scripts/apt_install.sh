# shellcheck shell=bash
# Sourced by the apt installers (device_tests/board/install_host_packages.sh,
# tests/install_browser_packages.sh, demos/android/install_build_tools.sh), so the root check and
# the apt call are written once. The callers are idempotent: they list only what is missing.
#
#   apt_need WHAT SKIPS PACKAGE...   0 when PACKAGEs should be installed now; 1 (after a message)
#                                    when none are missing ("WHAT present") or we are not root (a
#                                    warning: SKIPS, and the sudo command; not fatal, tests skip)
#   apt_install PACKAGE...           apt-get update + install, no recommends, non-interactive, stdin
#                                    closed (CI=true), waiting up to 10 min for the apt lock (CI and
#                                    other jobs run apt at the same time)

apt_need() {
  local what=$1 skips=$2
  shift 2
  if [ $# -eq 0 ]; then
    echo "$what present" >&2
    return 1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "warning: not root, cannot install $*; $skips" \
         "(sudo apt-get install -y --no-install-recommends $*)" >&2
    return 1
  fi
  return 0
}

apt_install() {
  echo "installing $*" >&2
  export DEBIAN_FRONTEND=noninteractive CI=true
  # explicit returns: callers run this as `apt_install ... || rc=$?`, where set -e is off
  apt-get -o DPkg::Lock::Timeout=600 update -qq </dev/null || return $?
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" </dev/null >/dev/null || return $?
}
