#!/usr/bin/env bash
# The scale benchmark (issue 16): builds the release binary, makes the test venv (moto), and runs
# bench/scale.py. Arguments go to scale.py (--help lists them). With --db postgres it uses the
# server DATABASE_URL names (creating and dropping a database beside it), else a throwaway one
# (scripts/with-postgres.sh).
#
#   bench/scale.sh --size small --db sqlite
#   bench/scale.sh --size large --db postgres
#   bench/scale.sh --users 2000 --groups 200 --memberships 20000 --big 5000   # smoke test
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
cargo build --release --locked -p scimbridge >&2
VENV=$(scripts/python-tools.sh)
exec scripts/with-postgres.sh "$VENV/bin/python" bench/scale.py "$@"
