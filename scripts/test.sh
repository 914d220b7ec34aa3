#!/usr/bin/env bash
# The test command: installs what is missing, then lint, unit, property, CLI and Aperture interop
# tests, the wasm build, bounded fuzzing and the verification benchmark.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

bash scripts/setup.sh

step "Format"
cargo fmt --all -- --check

step "Clippy (warnings denied; unwrap/expect/panic denied outside tests)"
cargo clippy --workspace --all-targets -- -D warnings

step "Tests"
log="$ROOT/target/test.log"
mkdir -p "$ROOT/target"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

bash scripts/build-wasm.sh
bash scripts/fuzz.sh
bash scripts/bench.sh

passed=$(grep -Eo '^test result: .* ([0-9]+) passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo
echo "${passed} passed, ${failed} failed"
exit "$status"
