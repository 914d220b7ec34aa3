# The filter as a .wasm. Build from the repository root.
#   Istio / OCI (single-layer "compat" image, /plugin.wasm):
#     docker build -f docker/wasm.Dockerfile -t REGISTRY/envoy-l402:TAG .
#   The file alone:
#     docker build -f docker/wasm.Dockerfile --target wasm --output type=local,dest=target .
# The Rust image is RUST_IMAGE in versions.env; docker-compose passes it, and this default must
# stay equal to it for a plain `docker build` (tests/test_versions.py compares them).
ARG RUST_IMAGE=rust:1.95-bookworm
FROM ${RUST_IMAGE} AS build
RUN rustup target add wasm32-wasip1
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target wasm32-wasip1 -p envoy-l402

FROM scratch AS wasm
COPY --from=build /src/target/wasm32-wasip1/release/envoy_l402.wasm /envoy_l402.wasm

# docker-compose's one-shot `wasm` service: copies the module into the volume Envoy mounts.
FROM busybox:1.36 AS compose
COPY --from=build /src/target/wasm32-wasip1/release/envoy_l402.wasm /envoy_l402.wasm
CMD ["cp", "/envoy_l402.wasm", "/out/envoy_l402.wasm"]

# Default target: what Istio's WasmPlugin pulls.
FROM scratch
COPY --from=build /src/target/wasm32-wasip1/release/envoy_l402.wasm /plugin.wasm
