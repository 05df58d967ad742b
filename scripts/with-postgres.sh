#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a PostgreSQL server.
#
# If DATABASE_URL already names a postgres:// server, it is used as is. Otherwise a throwaway
# cluster is created with initdb on a free loopback port (as the `postgres` user when run as
# root, since PostgreSQL refuses to run as root), and removed afterwards.
#
#   scripts/with-postgres.sh cargo test
set -euo pipefail

if [[ "${DATABASE_URL:-}" == postgres://* || "${DATABASE_URL:-}" == postgresql://* ]]; then
  exec "$@"
fi

find_pg_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  # Debian keeps the server binaries in a versioned directory off PATH.
  local candidate
  candidate=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$candidate" ]]; then echo "$candidate"; return; fi
  echo "with-postgres: cannot find $name; install PostgreSQL (apt-get install postgresql)" >&2
  exit 1
}

INITDB=$(find_pg_bin initdb)
PG_CTL=$(find_pg_bin pg_ctl)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TMP=$(mktemp -d /tmp/scimbridge-pg.XXXXXX)
chmod 755 "$TMP"

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres "$TMP"
    su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

cleanup() {
  as_pg "$PG_CTL" -D "$TMP/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

as_pg "$INITDB" -A trust -U postgres -D "$TMP/data" >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; exit 1; }
# fsync and synchronous_commit stay at PostgreSQL's defaults (durable), as in production.
as_pg "$PG_CTL" -D "$TMP/data" -l "$TMP/server.log" -w \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -k $TMP -c max_connections=300" start >/dev/null \
  || { cat "$TMP/server.log" >&2; exit 1; }

export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: throwaway PostgreSQL on 127.0.0.1:$PORT" >&2
"$@"
