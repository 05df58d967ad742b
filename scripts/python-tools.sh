#!/usr/bin/env bash
# Creates (or reuses) a Python venv holding the pinned conformance tools and the moto AWS
# emulator of scripts/requirements-test.txt, and prints the venv's path on stdout.
#
#   VENV=$(scripts/python-tools.sh)   # then "$VENV/bin/scim", "$VENV/bin/scim-sanity"
#
# The venv lives at ${SCIMBRIDGE_VENV:-<repo>/.venv}. A stamp file holding the hash of the
# requirements (and of the Python interpreter) makes a second run a no-op.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQS="$REPO/scripts/requirements-test.txt"
VENV=${SCIMBRIDGE_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}

command -v "$PYTHON" >/dev/null 2>&1 || { echo "python-tools: $PYTHON not found" >&2; exit 1; }

want=$( { cat "$REQS"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
stamp="$VENV/.scimbridge-requirements.sha256"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$VENV/bin/scim" && -x "$VENV/bin/scim-sanity" ]]; then
  echo "$VENV"
  exit 0
fi

echo "python-tools: installing $(grep -cv '^\s*\(#\|$\)' "$REQS") packages into $VENV" >&2
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV" >&2
fi
rm -f "$stamp"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" >&2
"$VENV/bin/scim" --help >/dev/null
"$VENV/bin/scim-sanity" --help >/dev/null
"$VENV/bin/python" -c 'import moto.server, moto.identitystore, moto.ssoadmin' >&2
echo "$want" >"$stamp"
echo "$VENV"
