#!/usr/bin/env bash
# Prints the per-request verification cost (ns/op). Target: under 5 µs for a 4-caveat token.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
step "Benchmark: verifying a typical token"
cargo bench -q -p l402-core --bench verify -- --warm-up-time 1 --measurement-time "${BENCH_SECONDS:-3}" 2>&1 \
  | grep -E -B1 'time:' | grep -v -e '^--$' -e '^Benchmarking'
