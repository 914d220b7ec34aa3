# The invoice service. Build from the repository root:
#   docker build -f docker/invoicer.Dockerfile -t envoy-l402/invoicer .
FROM rust:1.95-bookworm AS build
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
