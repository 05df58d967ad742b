#!/usr/bin/env bash
# The assignment benchmark: builds the release binary, makes the test venv (moto), and runs
# bench/assign_bench.py against the emulator. Arguments go to assign_bench.py (--help lists them).
#
#   bench/assign_bench.sh                     # 100 groups x 10 accounts = 1,000 assignments; 200 held
#   bench/assign_bench.sh --groups 10 --accounts 3 --held-groups 4 --hold 2   # smoke test
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
cargo build --release --locked -p scimbridge >&2
VENV=$(scripts/python-tools.sh)
exec "$VENV/bin/python" bench/assign_bench.py "$@"
