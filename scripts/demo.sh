#!/usr/bin/env bash
# The demo: builds everything (first run: the Lightning binaries take a few minutes), starts a
# regtest Lightning network, the invoice service, Envoy with the filter and a small API, and
# walks through 402 -> pay -> 200. The stack stays up for curl until Ctrl-C; --once tears it down.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# Only what the demo needs: Rust and the wasm target, btcd and lnd, Envoy in the cache's venv.
bash scripts/setup.sh demo
bash scripts/build-wasm.sh
step "Building the invoice service and the l402 command (release)"
cargo build --release -p l402-cli -p l402-invoicer
step "The L402 flow, step by step"
# The venv's Python: the stack renders Envoy's YAML with PyYAML, which setup.sh puts there.
exec "$CACHE/venv/bin/python" -B tools/demo.py "$@"
