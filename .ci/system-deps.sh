#!/usr/bin/env bash
# Debian packages the tests need: a PostgreSQL server (started on loopback by tests/conftest.py).
set -euo pipefail
have_pg() { command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
if ! have_pg || ! id postgres >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing PostgreSQL (Debian package) for the store tests..."
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
have_pg && echo "PostgreSQL server binaries: present"
