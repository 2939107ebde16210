#!/usr/bin/env bash
# Debian's Android build tools for the WebView demo APK (edgegan demo phone --apk, make
# android-demo): aapt (packaging), zipalign, apksigner, smali (libsmali-java: the Activity is
# written in smali because Debian has no android.jar and no d8), android-framework-res (the API 29
# framework-res.apk that aapt links against), and a JDK's keytool for the throw-away debug key.
# dexdump (tests only): opens classes.dex with ART's DexFileVerifier. Idempotent: installs only
# what is missing. Waits for the apt lock (CI and other jobs run apt).
# Not root -> a warning, and the APK tests skip with this command as their reason.
set -euo pipefail
need=()
command -v aapt >/dev/null || need+=(aapt)
command -v zipalign >/dev/null || need+=(zipalign)
command -v apksigner >/dev/null || need+=(apksigner)
command -v smali >/dev/null || need+=(libsmali-java)
[ -f /usr/share/android-framework-res/framework-res.apk ] || need+=(android-framework-res)
command -v keytool >/dev/null || need+=(openjdk-17-jre-headless)
command -v dexdump >/dev/null || need+=(dexdump)  # tests: ART's dex verifier on classes.dex
# shellcheck source=../../scripts/apt_install.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/apt_install.sh"
apt_need "android build tools" "the APK tests will skip" "${need[@]}" || exit 0
apt_install "${need[@]}"
