#!/usr/bin/env bash
# Short fuzz smoke run for CI: every cargo-fuzz target for a few seconds, starting from the
# committed corpus. Long runs and their figures: docs/fuzzing.md.
#
#   scripts/fuzz-smoke.sh [target...]         (default: all targets)
#
# Environment:
#   FUZZ_SMOKE_SECONDS=25          time per target
#   PRESCRYPT_FUZZ_REQUIRED=1      fail (exit 2) when the nightly toolchain is missing;
#                                  otherwise a missing nightly is reported and skipped (exit 0)
#
# Exit status: 0 all targets ran clean (or skipped, see above), 1 a target crashed/hung
# (the reproducer is under fuzz/artifacts/<target>/), 2 the tooling is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SMOKE_SECONDS:-25}"
all_targets=(token_parse prescription_id_parse host_link_decode ssi_parse hid_reports image_decode json_bodies)
if (($# > 0)); then targets=("$@"); else targets=("${all_targets[@]}"); fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the nightly toolchain is not installed (rustup toolchain install nightly);" \
        "cargo-fuzz needs it for -Zsanitizer coverage." >&2
    if [[ "${PRESCRYPT_FUZZ_REQUIRED:-0}" == 1 ]]; then
        echo "fuzz-smoke: FAILED (PRESCRYPT_FUZZ_REQUIRED=1)" >&2
        exit 2
    fi
    echo "fuzz-smoke: SKIPPED (set PRESCRYPT_FUZZ_REQUIRED=1 to make this an error)" >&2
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

# Same flags as the long runs in docs/fuzzing.md: no sanitizer (the code under test is safe
# Rust; see there), debug assertions on so that integer overflow panics.
flags=(--sanitizer none --debug-assertions --features service)
cargo +nightly fuzz build "${flags[@]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "fuzz/artifacts/$target"
    echo "fuzz-smoke: $target for ${seconds}s" >&2
    # New inputs go to the scratch corpus (first dir); the committed corpus is only read.
    if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" 2>"$work/$target.log"; then
        failed+=("$target")
        tail -n 40 "$work/$target.log" >&2
    fi
    grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "$work/$target.log" \
        | sed "s/^/fuzz-smoke: $target /" >&2 || true
done

if ((${#failed[@]} > 0)); then
    echo "fuzz-smoke: FAILED: ${failed[*]} (reproducers under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: ok (${#targets[@]} targets, ${seconds}s each)" >&2
