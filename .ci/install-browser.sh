#!/usr/bin/env bash
# Installs Debian's headless Chromium for the leaderboard's browser test, when it is missing.
# Without root or apt the browser test skips with a message; it never downloads a browser of its own.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will be skipped"
else
  echo "note: chromium not found and apt-get unavailable; the browser test will be skipped"
fi
exit 0
