#!/usr/bin/env bash
# Debian's chromium for the HTML-report browser test (tests/test_report_browser.py drives it with
# Python playwright, executable /usr/bin/chromium). Idempotent: installs only when missing, so a
# warm CI rerun spends no time here. Run as root (CI is root); not root -> a warning, and the
# browser test skips with the same command as its reason.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium present" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "warning: not root, cannot install chromium; the HTML-report browser test will skip" \
       "(sudo apt-get install -y --no-install-recommends chromium)" >&2
  exit 0
fi
echo "installing chromium" >&2
export DEBIAN_FRONTEND=noninteractive CI=true
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core </dev/null >/dev/null
