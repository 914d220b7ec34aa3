#!/usr/bin/env bash
# Packages the filter for Istio and prints what to paste into deploy/values/values.env:
#   - an OCI image layout (target/oci) in the single-layer "compat" form (/plugin.wasm), whose
#     manifest digest pins the module: WASM_URL=oci://REGISTRY/envoy-l402@sha256:…
#     Push it unchanged (the digest stays): crane push target/oci REGISTRY/envoy-l402:TAG
#     or: oras cp --from-oci-layout target/oci:latest REGISTRY/envoy-l402:TAG
#   - the .wasm's own sha256, for `url: https://…/envoy_l402.wasm` plus `sha256:` in a WasmPlugin.
# Usage: scripts/package-wasm.sh [REGISTRY/REPOSITORY]   (default ghcr.io/envoy-l402/envoy-l402)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
repository=${1:-ghcr.io/envoy-l402/envoy-l402}

bash scripts/build-wasm.sh >&2
rm -rf target/oci
digest=$(python3 tools/oci_layout.py "$WASM_OUT" target/oci)
echo "WASM_URL=oci://$repository@$digest"
echo "wasm sha256 (for http(s) url + sha256): $(sha256sum "$WASM_OUT" | cut -d' ' -f1)"
