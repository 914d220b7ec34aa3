# Shared helpers for the project's scripts. Source it; do not run it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Tools built or downloaded for the project live outside the work tree.
CACHE=${L402_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/envoy-l402}
WASM_OUT="$ROOT/target/envoy_l402.wasm"
# The pinned tool and image versions (LND_VERSION, ENVOY_VERSION, …): one file, read by every script.
# shellcheck source=../versions.env
source "$ROOT/versions.env"
mkdir -p "$CACHE"
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

_apt_updated=""
apt_install() {
  command -v apt-get >/dev/null || die "apt-get is missing; install by hand: $*"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if [ -z "$_apt_updated" ]; then
    $sudo apt-get update -qq
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
