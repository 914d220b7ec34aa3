# The filter as an Envoy dynamic module (libl402.so, for Envoy 1.40 on x86_64 Linux; it needs
# glibc 2.34 or later, which the envoyproxy/envoy images have). Build from the repository root:
#   docker build -f docker/native.Dockerfile --target module --output type=local,dest=target .
# The Rust image is RUST_IMAGE in versions.env; docker-compose passes it, and this default must
# stay equal to it for a plain `docker build` (tests/test_versions.py compares them).
ARG RUST_IMAGE=rust:1.95-bookworm
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --profile native -p l402-dynamic-module

FROM scratch AS module
COPY --from=build /src/target/native/libl402.so /libl402.so

# docker-compose.native.yml's one-shot `native` service: copies the module into the volume
# Envoy mounts as its ENVOY_DYNAMIC_MODULES_SEARCH_PATH.
FROM busybox:1.36 AS compose
COPY --from=build /src/target/native/libl402.so /libl402.so
CMD ["cp", "/libl402.so", "/out/libl402.so"]
