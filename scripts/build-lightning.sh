#!/usr/bin/env bash
# Builds the pinned regtest Lightning stack (btcd, btcctl, lnd, lncli) from Go modules
# into $CACHE/lightning/bin. Nothing is written into the work tree.
# Prints the bin directory on its last line.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# BTCD_VERSION and LND_VERSION come from versions.env (through lib.sh); Go takes lnd's version
# from tests/regtest/lnd-build/go.mod, which must say the same (tests/test_versions.py checks).
BIN="$CACHE/lightning/bin"
STAMP="$BIN/.versions"
WANT="btcd=$BTCD_VERSION lnd=$LND_VERSION"

command -v go >/dev/null || die "go is missing (Go >= 1.25 builds lnd and btcd): install golang from your registry"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] &&
  [ -x "$BIN/btcd" ] && [ -x "$BIN/btcctl" ] && [ -x "$BIN/lnd" ] && [ -x "$BIN/lncli" ]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN"
# -mod=mod lets go add go.sum lines for build-tagged packages to the copy, never to the tree.
export GOFLAGS="-modcacherw -mod=mod"
step "building btcd $BTCD_VERSION (first time only)" >&2
GOBIN="$BIN" go install "github.com/btcsuite/btcd@$BTCD_VERSION" \
  "github.com/btcsuite/btcd/cmd/btcctl@$BTCD_VERSION" >&2

step "building lnd $LND_VERSION (first time only; several minutes on 2 cores)" >&2
# A copy of the wrapper module, so go's go.sum updates never touch the tree.
work="$CACHE/lightning/lnd-build"
rm -rf "$work"
mkdir -p "$work"
cp "$ROOT/tests/regtest/lnd-build/"{go.mod,go.sum,tools.go} "$work/"
(
  cd "$work"
  go build -trimpath -o "$BIN/" \
    -tags="signrpc walletrpc chainrpc invoicesrpc peersrpc" \
    github.com/lightningnetwork/lnd/cmd/lnd github.com/lightningnetwork/lnd/cmd/lncli
) >&2
echo "$WANT" >"$STAMP"
echo "$BIN"
