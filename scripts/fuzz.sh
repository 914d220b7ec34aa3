#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, default 30).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT/crates/l402-core"
seconds=${FUZZ_SECONDS:-30}
for target in macaroon_decode credentials; do
  step "Fuzzing $target for ${seconds}s"
  # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler take them.
  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 2>&1 \
    | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|Done )' || true
  [ "${PIPESTATUS[0]}" = 0 ] || die "fuzz target $target found a crash (see crates/l402-core/fuzz/artifacts)"
done
