#!/usr/bin/env bash
# Reproduces the scanner firmware's budget figures in BENCHMARKS.md:
#  1. instructions per scanline decode (valgrind callgrind, counting only code128::read_line),
#  2. code size of the core built for the host with opt-level "s",
#  3. static RAM of the core's state (core::mem::size_of).
# Usage: bash scanner-firmware/bench/budget.sh   (from the workspace root; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
LINES=10

echo "== 1. callgrind instruction counts per scanline (release, ${LINES} lines each)"
CARGO_TARGET_DIR="$TARGET" cargo build -q --release -p prescrypt-scanner-firmware --example decode_budget
BIN="$TARGET/release/examples/decode_budget"
OUT=$(mktemp -d)
printf '%-8s %-7s %-7s %14s %10s  %s\n' samples line edges instr/line "ms@72MHz" result
for samples in 2048 3694; do
  for kind in read noread badcheck; do
    for edges in sharp smooth voted; do
      valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
        --toggle-collect='*code128::read_line*' "$BIN" "$samples" "$LINES" "$kind" "$edges" \
        >"$OUT/stdout" 2>"$OUT/stderr"
      total=$(sed -n 's/^summary: //p' "$OUT/cg.out")
      per_line=$((total / LINES))
      ms=$(awk -v n="$per_line" 'BEGIN { printf "%.2f", n / 72000 }')
      printf '%-8s %-7s %-7s %14s %10s  %s\n' "$samples" "$kind" "$edges" "$per_line" "$ms" "$(cat "$OUT/stdout")"
    done
  done
done

echo
echo "== 2. code size of the no_std core (opt-level s, codegen-units 1, host x86-64)"
SIZE_TARGET="$TARGET/opt-s"
CARGO_TARGET_DIR="$SIZE_TARGET" CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  cargo build -q --release -p prescrypt-scanner-firmware --no-default-features \
  --example core_footprint --example baseline_footprint
FOOT="$SIZE_TARGET/release/examples/core_footprint"
BASE="$SIZE_TARGET/release/examples/baseline_footprint"
text() { size -A "$1" | awk '$1 == ".text" || $1 == ".rodata" { sum += $2 } END { print sum }'; }
core_bytes=$(( $(text "$FOOT") - $(text "$BASE") ))
echo "  core = .text+.rodata of core_footprint minus baseline_footprint (includes code inlined into main): ${core_bytes} bytes"
echo "  by crate (symbol sizes):"
nm -S --size-sort -C "$FOOT" | python3 -c '
import re, sys
groups = [
    ("prescrypt-scanner-firmware", r"prescrypt_scanner_firmware"),
    ("prescrypt-barcode (ID/token rules)", r"prescrypt_barcode"),
    ("ed25519/sha2 (signature type)", r"curve25519|ed25519|sha2"),
    ("data-encoding (base32 in Token::parse_bytes)", r"data_encoding"),
    ("heapless/cobs/crc", r"heapless|cobs::|crc::"),
]
sizes = {name: 0 for name, _ in groups}
largest = []
for line in sys.stdin:
    parts = line.split(" ", 3)
    if len(parts) < 4 or parts[2] not in "tTrR":
        continue
    size, symbol = int(parts[1], 16), parts[3].strip()
    for name, pattern in groups:
        if re.search(pattern, symbol):
            sizes[name] += size
            if name == groups[0][0]:
                largest.append((size, symbol))
            break
for name, _ in groups:
    print(f"  {name:<42} {sizes[name]:>7} bytes")
total_label = "total (text + rodata of these crates)"
print(f"  {total_label:<42} {sum(sizes.values()):>7} bytes")
print("  largest functions of the firmware crate:")
for size, symbol in sorted(largest)[-8:]:
    print(f"  {size:>7} {symbol[:110]}")
'

echo
echo "== 3. static RAM"
"$FOOT" 100
rm -rf "$OUT"
