#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, default 30).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT/crates/l402-core"
seconds=${FUZZ_SECONDS:-30}
for target in macaroon_decode credentials; do
  step "Fuzzing $target for ${seconds}s"
  log="$ROOT/target/fuzz-$target.log"
  mkdir -p "$ROOT/target"
  # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler take them.
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    die "fuzz target $target failed (crash input in crates/l402-core/fuzz/artifacts/$target)"
  fi
  grep -E '^(Done |stat::number_of_executed_units)' "$log"
done
