#!/usr/bin/env bash
# The test command: installs what is missing, then lint, unit, property, CLI and Aperture interop
# tests, the wasm build, integration tests in real Envoy, end-to-end tests on a real regtest
# Lightning network, bounded fuzzing and the benchmarks.
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

step "Envoy, invoice-service and end-to-end tests (real Envoy, the built .wasm, regtest lnd)"
cargo build --release -q -p l402-cli -p l402-invoicer
set +e
"$CACHE/venv/bin/python" -m pytest -q -p no:cacheprovider tests/envoy tests/e2e tests/deploy 2>&1 \
  | tee "$ROOT/target/envoy-tests.log"
envoy_status=${PIPESTATUS[0]}
set -e
[ "$envoy_status" = 0 ] || status=$envoy_status

bash scripts/fuzz.sh
bash scripts/bench.sh

# Cargo's and pytest's counts together, in the plain form CI reads.
count() { { grep -Eo "[0-9]+ $1" || true; } | awk '{s+=$1} END {print s+0}'; }
cargo_lines=$(grep -E '^test result:' "$log" || true)
pytest_line=$(grep -E '(passed|failed|error).* in [0-9.]+s' "$ROOT/target/envoy-tests.log" | tail -n 1 || true)
passed=$(( $(count passed <<<"$cargo_lines") + $(count passed <<<"$pytest_line") ))
failed=$(( $(count failed <<<"$cargo_lines") + $(count failed <<<"$pytest_line") + $(count error <<<"$pytest_line") ))
echo
echo "${passed} passed, ${failed} failed"
exit "$status"
