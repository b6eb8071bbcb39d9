#!/usr/bin/env bash
# HTTP throughput of `prescrypt serve --dev`, measured from outside with wrk (its own process):
# the bare `GET /healthz` ceiling, one-step creates (the README's two-item body) and full
# lifecycles (create → release → dispense), each at 16 and 64 connections, each run on a fresh
# SQLite database (WAL, synchronous=FULL: every 2xx is on disk). Prints one markdown table line
# per run (req/s also as a share of the /healthz ceiling at the same connections), with the
# server's CPU time per request and the single writer thread's CPU time per operation, read from
# /proc (figures that stay comparable on a busy machine, unlike req/s).
#
#   scripts/bench-http.sh                       # 10 s per run
#   DURATION=20 CONNECTIONS="16 64" WORKERS=2 scripts/bench-http.sh
#   DATABASE_URL=postgres://… scripts/bench-http.sh   # PostgreSQL instead: a fresh database per run,
#                                                     # created and dropped with psql on that server
#                                                     # (a throwaway cluster: scripts/pg-cluster.sh)
#
# Environment: DURATION (s, default 10), WARMUP (s, default 2), CONNECTIONS (default "16 64"),
# WORKERS (the server's HTTP workers; default: its own, one per core), WRK_THREADS (default 2),
# PRACTICES (prescribing organisations the creates rotate over, default 16), RUNS (default
# "healthz creates lifecycles"), DATABASE_URL (default: a fresh SQLite file per run),
# PRESCRYPT_BIN (a prescrypt binary to measure instead of building this checkout's).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-16 64}"
WRK_THREADS="${WRK_THREADS:-2}"
PRACTICES="${PRACTICES:-16}"
RUNS="${RUNS:-healthz creates lifecycles}"

if [ -n "${DATABASE_URL:-}" ] && ! command -v psql >/dev/null; then
    echo "DATABASE_URL is set but psql is missing: it creates each run's database (apt-get install postgresql-client)" >&2
    exit 1
fi
if ! command -v wrk >/dev/null; then
    echo "wrk is missing: installing it (Debian package wrk)" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >&2 || { apt-get update >&2 && apt-get install -y wrk >&2; }
    else sudo apt-get install -y wrk >&2 || { sudo apt-get update >&2 && sudo apt-get install -y wrk >&2; }; fi
fi

work="$(mktemp -d -t bench-http-XXXXXXXX)"
if [ -n "${PRESCRYPT_BIN:-}" ]; then
    prescrypt="$PRESCRYPT_BIN"
else
    (cd "$repo" && cargo build --release -p prescrypt --bin prescrypt >&2)
    # A copy: a target directory shared with other checkouts may get another build meanwhile.
    cp "${CARGO_TARGET_DIR:-$repo/target}/release/prescrypt" "$work/prescrypt"
    prescrypt="$work/prescrypt"
fi

server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

keys="$work/keys"
token() { "$prescrypt" token --keys-dir "$keys" --ttl 8h "$@"; }
prescribers=""
for n in $(seq 1 "$PRACTICES"); do
    prescribers+="$(token --role prescriber --org "$(printf 'A8%04d' "$n")" --sub "G$(printf '%07d' "$n")") "
done
pharmacists=""
for org in FA565 FCG71 FX001 FX002; do
    pharmacists+="$org=$(token --role pharmacist --org "$org" --sub "P$org") "
done
export BENCH_LUA_DIR="$here/bench-http"
export BENCH_PRESCRIBERS="$prescribers"
export BENCH_PHARMACISTS="$pharmacists"
export BENCH_BODY='{"patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"}, "items": [{"code": "39720311000001101", "display": "Paracetamol 500mg tablets", "quantity": 32, "unit": "tablet", "dosage": "2 four times a day"}, {"code": "39113611000001102", "display": "Amoxicillin 500mg capsules", "quantity": 21, "unit": "capsule", "dosage": "1 three times a day"}]}'

# Starts a server on a fresh database; sets server_pid and base.
run_no=0
start_server() {
    run_no=$((run_no + 1))
    local url="$work/run$run_no.db"
    if [ -n "${DATABASE_URL:-}" ]; then
        PGOPTIONS="-c client_min_messages=warning" psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS prescrypt_bench_$run_no" -c "CREATE DATABASE prescrypt_bench_$run_no" >/dev/null
        url="${DATABASE_URL%/*}/prescrypt_bench_$run_no"
    fi
    local args=(serve --dev --bind 127.0.0.1:0 --database-url "$url" --keys-dir "$keys")
    if [ -n "${WORKERS:-}" ]; then args+=(--workers "$WORKERS"); fi
    "$prescrypt" "${args[@]}" >"$work/server$run_no.out" 2>"$work/server$run_no.log" &
    server_pid=$!
    for _ in $(seq 1 300); do
        base="$(sed -n 's/^listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/server$run_no.out" | head -1)"
        if [ -n "$base" ]; then return; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server$run_no.log" >&2; exit 1; fi
        sleep 0.1
    done
    echo "the server did not start" >&2; exit 1
}
stop_server() {
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
    # A run writes up to a few GB of WAL: free it before the next run fills the disk.
    if [ -n "${DATABASE_URL:-}" ]; then
        PGOPTIONS="-c client_min_messages=warning" psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS prescrypt_bench_$run_no" >/dev/null
    else
        rm -f "$work/run$run_no.db" "$work/run$run_no.db-wal" "$work/run$run_no.db-shm"
    fi
}

ticks="$(getconf CLK_TCK)"
# utime + stime of a process or thread, in clock ticks.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$1"; }
writer_stat() {
    local task
    for task in /proc/"$server_pid"/task/*; do
        if [ "$(cat "$task/comm" 2>/dev/null)" = "prescrypt-write" ]; then echo "$task/stat"; return; fi
    done
}

declare -A ceiling=()
printf '| load | connections | req/s | operations/s | p50 / p99 ms | of the /healthz ceiling | server CPU µs / request | writer CPU µs / operation | failed |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for load in $RUNS; do
    for connections in $CONNECTIONS; do
        start_server
        if [ "$WARMUP" -gt 0 ]; then
            wrk -t"$WRK_THREADS" -c"$connections" -d"${WARMUP}s" -s "$BENCH_LUA_DIR/$load.lua" "$base" >/dev/null
        fi
        writer="$(writer_stat)"
        server_before="$(cpu_ticks /proc/"$server_pid"/stat)"
        writer_before="$( [ -n "$writer" ] && cpu_ticks "$writer" || echo 0)"
        out="$(wrk -t"$WRK_THREADS" -c"$connections" -d"${DURATION}s" --timeout 10s -s "$BENCH_LUA_DIR/$load.lua" "$base")"
        server_after="$(cpu_ticks /proc/"$server_pid"/stat)"
        writer_after="$( [ -n "$writer" ] && cpu_ticks "$writer" || echo 0)"
        stop_server
        result="$(grep '^RESULT ' <<<"$out" || { echo "$out" >&2; exit 1; })"
        field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$result"; }
        rps="$(field requests_per_s)"; ops="$(field ops_per_s)"
        requests="$(field requests)"; done_ops="$(field ops)"
        failed=$(( $(field failed) + $(field socket_or_status_errors) ))
        if [ "$load" = healthz ]; then ceiling[$connections]="$rps"; fi
        awk -v load="$load" -v c="$connections" -v rps="$rps" -v ops="$ops" -v p50="$(field p50_ms)" \
            -v p99="$(field p99_ms)" -v ceiling="${ceiling[$connections]:-0}" -v tk="$ticks" -v req="$requests" -v n="$done_ops" \
            -v sb="$server_before" -v sa="$server_after" -v wb="$writer_before" -v wa="$writer_after" \
            -v failed="$failed" -v d="$DURATION" 'BEGIN {
            server_us = (sa - sb) / tk * 1e6 / (req > 0 ? req : 1)
            writer = (wa - wb) / tk * 1e6 / (n > 0 ? n : 1)
            busy = (wa - wb) / tk / d * 100
            ratio = (ceiling > 0) ? sprintf("%.1f %%", rps / ceiling * 100) : "—"
            wcol = (load == "healthz" || wa == 0) ? "—" : sprintf("%.0f (busy %.0f %%)", writer, busy)
            printf "| %s | %d | %.0f | %.0f | %.1f / %.1f | %s | %.0f | %s | %d |\n",
                load, c, rps, ops, p50, p99, ratio, server_us, wcol, failed
        }'
    done
done
echo
echo "uptime: $(uptime)"
if [ -n "${DATABASE_URL:-}" ]; then
    database="a fresh PostgreSQL database per run on $DATABASE_URL (its own processes' CPU is not in the server column)"
else
    database="a fresh SQLite file per run"
fi
echo "wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $WRK_THREADS threads, ${DURATION} s per run after ${WARMUP} s warm-up; server: prescrypt serve --dev${WORKERS:+ --workers $WORKERS}, $database; $(nproc) CPUs"
