#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (FUZZ_SECONDS each, default 30).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
seconds=${FUZZ_SECONDS:-30}
# crate:target, each crate's fuzz/ directory holding its targets.
for entry in l402-core:macaroon_decode l402-core:credentials l402-filter:request; do
  crate=${entry%%:*} target=${entry#*:}
  cd "$ROOT/crates/$crate"
  step "Fuzzing $target for ${seconds}s"
  log="$ROOT/target/fuzz-$target.log"
  mkdir -p "$ROOT/target"
  # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable compiler take them.
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    die "fuzz target $target failed (crash input in crates/$crate/fuzz/artifacts/$target)"
  fi
  grep -E '^(Done |stat::number_of_executed_units)' "$log"
done
