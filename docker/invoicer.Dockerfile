# The invoice service. Build from the repository root:
#   docker build -f docker/invoicer.Dockerfile -t envoy-l402/invoicer .
# The Rust image is RUST_IMAGE in versions.env; docker-compose passes it, and this default must
# stay equal to it for a plain `docker build` (tests/test_versions.py compares them).
ARG RUST_IMAGE=rust:1.95-bookworm
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p l402-invoicer

# distroless: no shell, runs as uid 65532 (nonroot); works with a read-only root filesystem.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/l402-invoicer /usr/local/bin/l402-invoicer
USER nonroot
EXPOSE 8402
ENTRYPOINT ["/usr/local/bin/l402-invoicer"]
CMD ["--config", "/etc/l402/invoicer.toml"]
