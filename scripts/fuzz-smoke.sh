#!/usr/bin/env bash
# Short fuzz smoke run for CI: every cargo-fuzz target for a few seconds, starting from the
# committed corpus. Long runs and their figures: docs/fuzzing.md.
#
#   scripts/fuzz-smoke.sh [target...]         (default: the seven targets without the service)
#
# Environment:
#   FUZZ_SMOKE_SECONDS=20          fuzzing time per target
#   FUZZ_SMOKE_SERVICE=1           add json_bodies to the default targets; its coverage build of
#                                  the whole service (actix-web, diesel, bundled SQLite) is the
#                                  slow part (59 min measured on the shared dev machine), so CI
#                                  leaves it out; its corpus is still replayed on stable by
#                                  tests/fuzz_regressions.rs
#   PRESCRYPT_FUZZ_REQUIRED=1      run even without the nightly toolchain (stable compiler with
#                                  RUSTC_BOOTSTRAP=1); otherwise a missing nightly is reported
#                                  and skipped (exit 0)
#   FUZZ_TARGET_DIR=<dir>          cargo target dir of the fuzz build (default fuzz/target)
#
# Exit status: 0 all targets ran clean (or skipped, see above), 1 a target crashed/hung
# (the reproducer is under fuzz/artifacts/<target>/), 2 the tooling is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SMOKE_SECONDS:-20}"
default_targets=(token_parse prescription_id_parse gs1_parse host_link_decode ssi_parse hid_reports image_decode)
if [[ "${FUZZ_SMOKE_SERVICE:-0}" == 1 ]]; then default_targets+=(json_bodies); fi
if (($# > 0)); then targets=("$@"); else targets=("${default_targets[@]}"); fi

# cargo-fuzz passes -Z flags to rustc, so it needs a nightly compiler. Where only the stable
# toolchain exists (rustup cannot fetch another one on some machines), RUSTC_BOOTSTRAP=1 lets the
# same stable compiler accept them; PRESCRYPT_FUZZ_REQUIRED=1 makes that the fallback instead of
# a skip.
toolchain=(+nightly)
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the nightly toolchain is not installed (rustup toolchain install nightly)." >&2
    if [[ "${PRESCRYPT_FUZZ_REQUIRED:-0}" != 1 ]]; then
        echo "fuzz-smoke: SKIPPED (set PRESCRYPT_FUZZ_REQUIRED=1 to run on stable with RUSTC_BOOTSTRAP=1)" >&2
        exit 0
    fi
    echo "fuzz-smoke: using the stable toolchain with RUSTC_BOOTSTRAP=1" >&2
    toolchain=()
    export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

# Same flags as the long runs in docs/fuzzing.md: no sanitizer (the code under test is safe
# Rust; see there), debug assertions on so that integer overflow panics. Only `json_bodies`
# links the service (feature `service`); the other seven are built without it, so they do not
# wait for actix-web and diesel and do not change when the service does.
base=(--sanitizer none --debug-assertions)
if [[ -n "${FUZZ_TARGET_DIR:-}" ]]; then base+=(--target-dir "$FUZZ_TARGET_DIR"); fi
flags_for() {
    if [[ "$1" == json_bodies ]]; then echo --features service; fi
}

started=$SECONDS
want_service=0
want_plain=0
for target in "${targets[@]}"; do
    if [[ "$target" == json_bodies ]]; then want_service=1; else want_plain=1; fi
done
if ((want_plain)); then cargo "${toolchain[@]}" fuzz build "${base[@]}"; fi
if ((want_service)); then cargo "${toolchain[@]}" fuzz build "${base[@]}" --features service json_bodies; fi
built=$SECONDS
echo "fuzz-smoke: build took $((built - started)) s" >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "fuzz/artifacts/$target"
    echo "fuzz-smoke: $target for ${seconds}s" >&2
    # shellcheck disable=SC2046 # flags_for prints zero or two words
    # New inputs go to the scratch corpus (first dir); the committed corpus is only read.
    if ! cargo "${toolchain[@]}" fuzz run "${base[@]}" $(flags_for "$target") "$target" \
        "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" 2>"$work/$target.log"; then
        failed+=("$target")
        tail -n 40 "$work/$target.log" >&2
    fi
    grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "$work/$target.log" \
        | sed "s/^/fuzz-smoke: $target /" >&2 || true
done
echo "fuzz-smoke: runs took $((SECONDS - built)) s" >&2

if ((${#failed[@]} > 0)); then
    echo "fuzz-smoke: FAILED: ${failed[*]} (reproducers under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: ok (${#targets[@]} targets, ${seconds}s each, $((SECONDS - started)) s in all)" >&2
