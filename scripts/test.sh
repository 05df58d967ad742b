#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). On a fresh machine it installs what the
# tests need (Python conformance tools in a venv; PostgreSQL from Debian's packages if it is
# missing), builds everything, and runs:
#   1. the unit tests and the end-to-end tests on SQLite and on PostgreSQL;
#   2. the open conformance suites (scim2-tester, scim-sanity) against the real binary, in the
#      strict compat mode on SQLite and on PostgreSQL, and in the default lenient mode on SQLite;
#   3. the Helm chart check (offline render, strict manifest validation, refused values).
# PostgreSQL: $DATABASE_URL when it points at a server, else a throwaway cluster on a free port.
# The last line sums every test and check that ran: "all: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

LOG=$(mktemp "${TMPDIR:-/tmp}/scimbridge-test.XXXXXX")
trap 'rm -f "$LOG"' EXIT
step() { printf '\n==> %s\n' "$*" >&2; }

step "test tools"
scripts/install-postgres.sh
scripts/python-tools.sh >/dev/null

step "Helm chart (offline render, strict validation, refused values)"
scripts/chart-check.sh 2>&1 | tee -a "$LOG"

step "build"
cargo build --workspace --all-targets --locked

step "unit and end-to-end tests (SQLite and PostgreSQL)"
scripts/with-postgres.sh cargo test --workspace --locked 2>&1 | tee -a "$LOG"

step "conformance suites on SQLite (strict mode)"
scripts/conformance.sh sqlite 2>&1 | tee -a "$LOG"

step "conformance suites on PostgreSQL (strict mode)"
scripts/with-postgres.sh scripts/conformance.sh postgres 2>&1 | tee -a "$LOG"

step "conformance suites on SQLite (generic mode: the tolerances must not break RFC clients)"
CONFORMANCE_COMPAT=generic scripts/conformance.sh sqlite 2>&1 | tee -a "$LOG"

# cargo: "test result: ok. 12 passed; 0 failed; …"; conformance: "scim2-tester: 135 passed, 0 failed".
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
  /^(scim2-tester|scim-sanity|chart-check): [0-9]+ passed, [0-9]+ failed/ { p += $2; f += $4 }
  END { printf "all: %d passed, %d failed\n", p, f }
' "$LOG"
