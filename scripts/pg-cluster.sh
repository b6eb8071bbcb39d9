#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for tests, CI and benchmarks (no Docker).
#
#   scripts/pg-cluster.sh start DIR [PORT]   initdb (if DIR is empty) and start; prints the URL
#   scripts/pg-cluster.sh stop DIR           fast shutdown
#   scripts/pg-cluster.sh url DIR            the URL of a running cluster
#
# The cluster listens on 127.0.0.1:PORT (default: a free port) with trust authentication for the
# `postgres` role, its socket in DIR/sock. fsync is off unless PG_DURABLE=1 (benchmarks set it).
# As root the server runs as the `postgres` user (created if missing): PostgreSQL refuses root.
# Binaries: $PG_BIN, else `pg_config --bindir`, else /usr/lib/postgresql/*/bin, else PATH.
set -euo pipefail

die() { echo "pg-cluster: $*" >&2; exit 1; }

find_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  done
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  die "no PostgreSQL server binaries (install postgresql-15 or set PG_BIN)"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    return
  fi
  local port _
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  die "no free port found"
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop|url DIR [PORT]"
BIN=$(find_bin)

case "$cmd" in
  start)
    port=${3:-$(free_port)}
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    as_owner mkdir -p "$dir/sock"
    fsync=off
    [ "${PG_DURABLE:-0}" = 1 ] && fsync=on
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=1000 -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on" \
      start >/dev/null || { cat "$dir/server.log" >&2; die "pg_ctl start failed"; }
    echo "$port" >"$dir/port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -d "$dir/data" ] || exit 0
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  url)
    [ -f "$dir/port" ] || die "no cluster in $dir"
    echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"
    ;;
  *) die "unknown command $cmd" ;;
esac
