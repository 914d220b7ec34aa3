#!/usr/bin/env bash
# Builds the filter for wasm32-wasip1 and copies it to target/envoy_l402.wasm.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

step "Building the filter (.wasm)"
if [ "${L402_WASM_TOOLCHAIN:-}" != debian ] && command -v rustup >/dev/null \
   && rustup target list --installed | grep -qx wasm32-wasip1; then
  cargo build --release --target wasm32-wasip1 -p envoy-l402
  built="$ROOT/target/wasm32-wasip1/release/envoy_l402.wasm"
else
  [ -x /usr/bin/rustc ] && [ -x /usr/lib/llvm-19/bin/wasm-ld ] || die "no wasm toolchain: run scripts/setup.sh"
  # Debian's compiler rebuilds std for the target; a separate target dir keeps its artifacts apart.
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_DIR="$ROOT/target/debian-wasm" \
  CARGO_TARGET_WASM32_WASIP1_LINKER=/usr/lib/llvm-19/bin/wasm-ld \
  RUSTFLAGS="-C link-self-contained=no -L native=/usr/lib/wasm32-wasi" \
    /usr/bin/cargo build --release --target wasm32-wasip1 -Zbuild-std=std,panic_abort -p envoy-l402
  built="$ROOT/target/debian-wasm/wasm32-wasip1/release/envoy_l402.wasm"
fi
cp "$built" "$WASM_OUT"
printf '%s  %s bytes  sha256 %s\n' "$WASM_OUT" "$(stat -c %s "$WASM_OUT")" "$(sha256sum "$WASM_OUT" | cut -d' ' -f1)"
