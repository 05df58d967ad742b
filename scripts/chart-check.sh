#!/usr/bin/env bash
# Offline check of the Helm chart (charts/scimbridge): no helm binary, no cluster, no network
# beyond installing the pinned PyPI packages of scripts/requirements-chart.txt once.
#
#   scripts/chart-check.sh
#
# Renders the chart with every charts/scimbridge/ci/*.yaml values file, lints it, validates the
# manifests strictly against the Kubernetes API schemas, checks what they contain, and checks
# that every charts/scimbridge/tests/fail/*.yaml values file is refused with its message (see
# charts/scimbridge/tests/check_chart.py). The last line is "chart-check: N passed, N failed";
# the exit status is 1 when a check failed.
#
# The venv lives at ${SCIMBRIDGE_CHART_VENV:-<repo>/.venv-chart}; a stamp file holding the hash
# of the requirements (and of the Python interpreter) makes the install a no-op after the first.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQS="$REPO/scripts/requirements-chart.txt"
VENV=${SCIMBRIDGE_CHART_VENV:-$REPO/.venv-chart}
PYTHON=${PYTHON:-python3}

command -v "$PYTHON" >/dev/null 2>&1 || { echo "chart-check: $PYTHON not found" >&2; exit 1; }
# tomllib (reading the rendered config back) is in the standard library from 3.11.
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "chart-check: needs Python 3.11 or newer ($PYTHON is $("$PYTHON" -V 2>&1))" >&2; exit 1; }

want=$( { cat "$REQS"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
stamp="$VENV/.scimbridge-requirements.sha256"

if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "chart-check: installing $(grep -cv '^\s*\(#\|$\)' "$REQS") packages into $VENV" >&2
  if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV" >&2
  fi
  rm -f "$stamp"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" >&2
  "$VENV/bin/python" -c 'import helm_python, kubernetes_validate, yaml' >&2
  echo "$want" >"$stamp"
fi

exec "$VENV/bin/python" "$REPO/charts/scimbridge/tests/check_chart.py"
