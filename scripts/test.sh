#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). On a fresh machine it installs what the
# tests need (Python conformance tools in a venv; PostgreSQL from Debian's packages if it is
# missing), builds everything, and runs:
#   1. the unit tests and the end-to-end tests on SQLite and on PostgreSQL;
#   2. the open conformance suites (scim2-tester, scim-sanity) against the real binary, on
#      SQLite and on PostgreSQL.
# PostgreSQL: $DATABASE_URL when it points at a server, else a throwaway cluster on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "test tools"
scripts/install-postgres.sh
scripts/python-tools.sh

step "build"
cargo build --workspace --all-targets --locked

step "unit and end-to-end tests (SQLite and PostgreSQL)"
scripts/with-postgres.sh cargo test --workspace --locked

step "conformance suites on SQLite"
scripts/conformance.sh sqlite

step "conformance suites on PostgreSQL"
scripts/with-postgres.sh scripts/conformance.sh postgres
