#!/usr/bin/env bash
# The demo. Today it walks through the L402 protocol with the `l402` command: a challenge is minted,
# "paid" (the preimage is known), and the credential verifies; then the ways it is refused.
# The full flow through Envoy and a regtest Lightning network replaces this as those parts land.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

step "Building the l402 command"
cargo build --release -q -p l402-cli
l402="$ROOT/target/release/l402"

master_secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
preimage=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
payment_hash=$(printf '%s' "$preimage" | xxd -r -p 2>/dev/null | sha256sum | cut -d' ' -f1 \
  || python3 -c "import hashlib,sys;print(hashlib.sha256(bytes.fromhex('$preimage')).hexdigest())")
token_id="00000001$(head -c 28 /dev/urandom | od -An -tx1 | tr -d ' \n')"
until=$(( $(date +%s) + 3600 ))

step "The server mints a challenge for service 'weather' (key id 1, valid one hour)"
mac=$("$l402" mint --master-key "1:$master_secret" --payment-hash "$payment_hash" --token-id "$token_id" \
  --caveat "services=weather:0" --caveat "weather_capabilities=" --caveat "weather_valid_until=$until")
echo "WWW-Authenticate: LSAT macaroon=\"$mac\", invoice=\"<bolt11 for payment hash $payment_hash>\""
echo "WWW-Authenticate: L402 macaroon=\"$mac\", invoice=\"<bolt11 for payment hash $payment_hash>\""
"$l402" decode "$mac"

step "The client pays and learns the preimage; it retries with Authorization: L402"
echo "Authorization: L402 $mac:$preimage"
"$l402" verify --master-key "1:$master_secret" --service weather --header "Authorization: L402 $mac:$preimage"

step "The same token on another service is refused"
"$l402" verify --master-key "1:$master_secret" --service news --header "Authorization: L402 $mac:$preimage" || true

step "After its valid_until it is refused"
"$l402" verify --master-key "1:$master_secret" --service weather --now "$until" \
  --header "Authorization: L402 $mac:$preimage" || true
