#!/usr/bin/env bash
# The on-demand SCIM benchmark: scimbridge (release binary, PostgreSQL) vs. the scim2-server peer
# vs. PostgreSQL's own ceiling (pgbench). Prints a table; writes bench/results/bench-*.json.
# See bench/README.md.
#
#   bench/run.sh                       # full size: 100,000 users, 10,000 groups, one of 50,000
#   bench/run.sh --duration 20         # any option of bench/bench.py (--help lists them)
#   BENCH_NO_PEER=1 bench/run.sh       # skip scim2-server
#
# Uses DATABASE_URL if it names a postgres:// server (the benchmark creates and drops a database
# `bench_ceiling` there and writes into the one the URL names), else a throwaway cluster
# (scripts/with-postgres.sh, PostgreSQL's default durability).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

PEER_VERSION=${BENCH_PEER_VERSION:-0.8.3}
VENV=${BENCH_VENV:-$REPO/target/bench-venv}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}

echo "bench: building the release binary" >&2
cargo build --release -p scimbridge >&2
BIN="$TARGET_DIR/release/scimbridge"

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk (apt)" >&2
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq >&2 && apt-get install -y -qq wrk >&2
  else
    sudo apt-get update -qq >&2 && sudo apt-get install -y -qq wrk >&2
  fi
fi
command -v pgbench >/dev/null 2>&1 || [[ -x /usr/bin/pgbench ]] \
  || { echo "bench: pgbench is missing (apt-get install postgresql-client)" >&2; exit 1; }

PEER_ARGS=()
if [[ -z "${BENCH_NO_PEER:-}" ]]; then
  if [[ ! -x "$VENV/bin/scim2-server" ]] \
     || [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("scim2-server"))' 2>/dev/null)" != "$PEER_VERSION" ]]; then
    echo "bench: installing scim2-server==$PEER_VERSION into $VENV" >&2
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "scim2-server==$PEER_VERSION" >&2
  fi
  PEER_ARGS=(--peer-bin "$VENV/bin/scim2-server")
fi

echo "bench: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
exec scripts/with-postgres.sh python3 "$REPO/bench/bench.py" --bin "$BIN" "${PEER_ARGS[@]}" "$@"
