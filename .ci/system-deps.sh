#!/usr/bin/env bash
# Debian packages the tests need, installed by the project's own files (idempotent, one apt-get run):
#   postgresql  a server the store tests start on loopback (tests/conftest.py)
#   chromium    the browser the dashboard tests drive with Playwright (Playwright's own download fails here)
set -euo pipefail
need=()
have_pg() { command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
{ have_pg && id postgres >/dev/null 2>&1; } || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing Debian packages for the tests: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "system deps present: postgresql $(compgen -G '/usr/lib/postgresql/*/bin/initdb' | head -1 | cut -d/ -f5), $(/usr/bin/chromium --version 2>/dev/null | head -1)"
