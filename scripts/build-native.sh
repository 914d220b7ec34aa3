#!/usr/bin/env bash
# Builds the filter as an Envoy dynamic module (Linux, Envoy 1.40's ABI) into
# target/native/libl402.so: cargo's `native` profile, the release build with panics unwinding to
# the module's entry points, which catch them.
#   scripts/build-native.sh          the module
#   scripts/build-native.sh probes   also the test-only builds: one that panics on request
#                                    (target/probes/panic) and one importing a callback no Envoy
#                                    has (target/probes/missing-callback)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

step "Building the filter (Envoy dynamic module)"
cargo build --profile native -p l402-dynamic-module
built="$ROOT/target/native/libl402.so"
printf '%s  %s bytes  sha256 %s\n' "$built" "$(stat -c %s "$built")" "$(sha256sum "$built" | cut -d' ' -f1)"

if [ "${1:-}" = probes ]; then
  for probe in panic missing-callback; do
    step "Building the $probe probe (tests only)"
    CARGO_TARGET_DIR="$ROOT/target/probes/$probe" \
      cargo build -q --profile native -p l402-dynamic-module --features "$probe-probe"
  done
fi
