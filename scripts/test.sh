#!/usr/bin/env bash
# The test command (CI runs it with no argument). Installs what is missing, then runs a stage:
#   all    (default) lint, unit, property, CLI and Aperture interop tests, the wasm and dynamic
#          module builds, the filter in real Envoy (both builds), end-to-end tests on a real
#          regtest Lightning network (both builds), the
#          invoice service, the deploy/ manifests and docker-compose.yml, bounded fuzzing and the
#          benchmarks (first run: building lnd takes several minutes)
#   quick  format check, clippy, the cargo tests, both builds and the filter in real Envoy
#          (tests/envoy): a few minutes on a machine that has run it before
# Both end with one line, `N passed, N failed` (cargo's and pytest's counts together), and exit
# non-zero when anything failed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

usage() { echo "usage: scripts/test.sh [quick|all]   (default: all)" >&2; exit 2; }
[ $# -le 1 ] || usage
stage=${1:-all}
case "$stage" in
  quick | all) ;;
  *) usage ;;
esac

bash scripts/setup.sh "$stage"

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
bash scripts/build-native.sh probes

# tests/test_versions.py: the pins that cannot read versions.env agree with it (no tools needed).
if [ "$stage" = quick ]; then
  step "The filter in real Envoy (the .wasm and the dynamic module, a stand-in invoice service)"
  cargo build --release -q -p l402-cli
  suites=(tests/envoy tests/test_versions.py)
else
  step "Envoy, invoice-service and end-to-end tests (real Envoy with the .wasm and the dynamic module, regtest lnd)"
  cargo build --release -q -p l402-cli -p l402-invoicer
  suites=(tests/envoy tests/e2e tests/deploy tests/test_versions.py)
fi
set +e
# -B and no cacheprovider: nothing written into the work tree (.gitignore does not list __pycache__).
"$CACHE/venv/bin/python" -B -m pytest -q -p no:cacheprovider "${suites[@]}" 2>&1 \
  | tee "$ROOT/target/envoy-tests.log"
envoy_status=${PIPESTATUS[0]}
set -e
[ "$envoy_status" = 0 ] || status=$envoy_status

if [ "$stage" = all ]; then
  bash scripts/fuzz.sh
  bash scripts/bench.sh
fi

# Cargo's and pytest's counts together, in the plain form CI reads.
count() { { grep -Eo "[0-9]+ $1" || true; } | awk '{s+=$1} END {print s+0}'; }
cargo_lines=$(grep -E '^test result:' "$log" || true)
pytest_line=$(grep -E '(passed|failed|error).* in [0-9.]+s' "$ROOT/target/envoy-tests.log" | tail -n 1 || true)
passed=$(( $(count passed <<<"$cargo_lines") + $(count passed <<<"$pytest_line") ))
failed=$(( $(count failed <<<"$cargo_lines") + $(count failed <<<"$pytest_line") + $(count error <<<"$pytest_line") ))
echo
echo "stage $stage took $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "${passed} passed, ${failed} failed"
exit "$status"
