#!/usr/bin/env bash
# Prints figures, asserts no timing: the per-request verification cost (target: under 5 µs for
# a 4-caveat token), the filter's request handling around it, the wasm and native filters side by
# side with Envoy alone and jwt_authn, challenges/s with p50/p99 of the invoice service against
# regtest lnd, and counted tokens against plain ones through Envoy with Redis. Needs what scripts/setup.sh (all) installs: wrk, redis-server, btcd
# and lnd, and the cache's venv (tests/support imports PyYAML, which the venv has).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
step "Benchmark: verifying a typical token"
cargo bench -q -p l402-core --bench verify -- --warm-up-time 1 --measurement-time "${BENCH_SECONDS:-3}" 2>&1 \
  | grep -E -B1 'time:' | grep -v -e '^--$' -e '^Benchmarking'

step "Benchmark: the filter's request handling (native): request line, route decision, a paid request"
cargo bench -q -p l402-filter --bench request -- --warm-up-time 1 --measurement-time "${BENCH_SECONDS:-3}" 2>&1 \
  | grep -E -B1 'time:' | grep -v -e '^--$' -e '^Benchmarking'

step "Benchmark: the filter in Envoy side by side (wasm, native module, jwt_authn; one core each)"
bash scripts/build-wasm.sh >/dev/null
bash scripts/build-native.sh >/dev/null
cargo build -q --release --target wasm32-wasip1 --manifest-path tests/support/noop-filter/Cargo.toml \
  --target-dir target/noop-filter
CARGO_TARGET_DIR="$ROOT/target/probes/noop" cargo build -q --profile native -p l402-dynamic-module \
  --features noop-probe
"$CACHE/venv/bin/python" -B tests/support/bench_filters.py --seconds "${BENCH_SECONDS:-3}" 2>&1

step "Benchmark: the filter's cost as the work grows (caveats, header bytes, routes, revoked ids)"
"$CACHE/venv/bin/python" -B tests/support/bench_growth.py 2>&1

step "Benchmark: invoice service against regtest lnd (wrk)"
cargo build --release -q -p l402-invoicer
"$CACHE/venv/bin/python" -B tests/support/bench_invoicer.py --seconds "${BENCH_SECONDS:-3}" 2>&1 | grep -v '^\[regtest\]'

step "Benchmark: counted tokens against plain tokens through Envoy, and revocations read from Redis"
bash scripts/build-wasm.sh >/dev/null
"$CACHE/venv/bin/python" -B tests/support/bench_quota.py --seconds "${BENCH_SECONDS:-3}" 2>&1
bash scripts/build-native.sh >/dev/null
"$CACHE/venv/bin/python" -B tests/support/bench_quota.py --build native --seconds "${BENCH_SECONDS:-3}" 2>&1
