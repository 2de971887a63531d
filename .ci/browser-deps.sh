#!/usr/bin/env bash
# Debian's Chromium for the dashboard browser tests (tests/test_dash_browser.py drive it with Playwright).
# `playwright install` (Playwright's own browser download) fails on these machines, so the tests launch
# /usr/bin/chromium through Playwright's executable_path instead. Idempotent: does nothing when Chromium is there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
