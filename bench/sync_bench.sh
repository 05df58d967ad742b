#!/usr/bin/env bash
# The sync benchmark (issue 4): builds the release binary, makes the test venv (moto), and runs
# bench/sync_bench.py against the emulator. Arguments go to sync_bench.py (--help lists them).
#
#   bench/sync_bench.sh                                   # 10,000 users, 1,000 groups, 50,000 memberships
#   bench/sync_bench.sh --users 1000 --groups 100 --memberships 5000 --slice 300   # smoke test
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
cargo build --release --locked -p scimbridge >&2
VENV=$(scripts/python-tools.sh)
exec "$VENV/bin/python" bench/sync_bench.py "$@"
