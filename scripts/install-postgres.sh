#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, pg_ctl) are available for the tests;
# installs Debian's postgresql package when they are missing (needs root and apt-get).
set -euo pipefail
if [[ "${DATABASE_URL:-}" == postgres* ]]; then exit 0; fi
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-postgres: PostgreSQL is missing; install it (e.g. apt-get install postgresql) or set DATABASE_URL" >&2
  exit 1
fi
echo "install-postgres: installing Debian's postgresql package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
