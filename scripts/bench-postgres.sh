#!/usr/bin/env bash
# The lifecycle load generator (examples/loadgen.rs) against PostgreSQL with 1..N service
# instances. A benchmark, not a test: figures go to docs/benchmarks-postgres.md.
#
#   scripts/bench-postgres.sh [INSTANCES=1] [CLIENTS=64] [SECONDS=10] [PRACTICES=64]
#
# Starts a throwaway cluster with fsync ON (durable commits, like SQLite's synchronous=FULL),
# N `prescrypt serve` processes on one database sharing one keys directory, and one load
# generator per instance with CLIENTS/N clients each, all at once; the rates add up.
# BENCH_KEEP_LOGS=DIR keeps the servers' logs and the load generators' output there.
set -euo pipefail
cd "$(dirname "$0")/.."

instances=${1:-1}
clients=${2:-64}
seconds=${3:-10}
# Prescribing practices the clients are spread over (creates serialise per practice).
practices=${4:-64}
target=${CARGO_TARGET_DIR:-target}

# BENCH_SKIP_BUILD=1 uses the binaries already built under $CARGO_TARGET_DIR/release.
[ -n "${BENCH_SKIP_BUILD:-}" ] || cargo build --release --bin prescrypt --example loadgen >&2
bin=$target/release/prescrypt
loadgen=$target/release/examples/loadgen

work=$(mktemp -d)
chmod 755 "$work"   # the postgres user must reach the cluster directory inside
pids=()
cleanup() {
  if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
    mkdir -p "$BENCH_KEEP_LOGS" && cp "$work"/*.log "$work"/*.txt "$BENCH_KEEP_LOGS"/ 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  scripts/pg-cluster.sh stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT

server=$(PG_DURABLE=1 scripts/pg-cluster.sh start "$work/pg")
psql -q "$server" -c "CREATE DATABASE bench"
url=${server%/postgres}/bench

urls=()
for n in $(seq "$instances"); do
  mkfifo "$work/out$n"
  "$bin" serve --bind 127.0.0.1:0 --database-url "$url" --keys-dir "$work/keys" \
    --db-pool-size 16 --dev >"$work/out$n" 2>"$work/serve$n.log" &
  pids+=($!)
  read -r line <"$work/out$n"
  urls+=("${line#listening on }")
done

echo "PostgreSQL $(psql -Atc 'SHOW server_version' "$server"), fsync on, synchronous_commit on;" \
  "$instances instance(s), $clients clients over $practices practices, $seconds s per phase, $(nproc) cores"
per=$((clients / instances))
runs=()
for n in $(seq "$instances"); do
  "$loadgen" --url "${urls[$((n - 1))]}" --keys-dir "$work/keys" --clients "$per" \
    --seconds "$seconds" --practices "$practices" >"$work/load$n.txt" 2>&1 &
  runs+=($!)
done
for pid in "${runs[@]}"; do wait "$pid"; done
for n in $(seq "$instances"); do
  echo "-- load generator $n -> ${urls[$((n - 1))]}"
  grep -E "creates|lifecycles|ceilings|ed25519|sqlite" "$work/load$n.txt"
done
