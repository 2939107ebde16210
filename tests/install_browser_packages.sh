#!/usr/bin/env bash
# Debian's chromium for the HTML-report browser test (tests/test_report_browser.py drives it with
# Python playwright, executable /usr/bin/chromium). Idempotent: installs only when missing, so a
# warm CI rerun spends no time here. Run as root (CI is root); not root -> a warning, and the
# browser test skips with the same command as its reason.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
# shellcheck source=../scripts/apt_install.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/apt_install.sh"
apt_need chromium "the HTML-report browser test will skip" "${need[@]}" || exit 0
apt_install "${need[@]}"
