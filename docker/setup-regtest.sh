#!/bin/sh
# docker-compose's one-shot `setup` service (runs in the lnd image, which has lncli and busybox):
# funds bob, opens a channel bob -> alice, bakes the invoice service's macaroon and hands it and
# alice's tls.cert over in /shared. Safe to run again: it skips what is done.
set -eu

RPC="http://${BITCOIND_RPCUSER}:${BITCOIND_RPCPASS}@bitcoind:18443/"
alice() { lncli --network=regtest --rpcserver=alice:10009 --lnddir=/alice "$@"; }
bob() { lncli --network=regtest --rpcserver=bob:10009 --lnddir=/bob "$@"; }
mine() {
  wget -qO- --header 'Content-Type: text/plain' \
    --post-data "{\"jsonrpc\":\"1.0\",\"id\":\"setup\",\"method\":\"generatetoaddress\",\"params\":[$1,\"$2\"]}" \
    "$RPC" >/dev/null
}
field() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" | head -n 1; }

echo "waiting for alice and bob"
until alice getinfo >/dev/null 2>&1 && bob getinfo >/dev/null 2>&1; do sleep 1; done
alice_key=$(alice getinfo | field identity_pubkey)

if ! bob listchannels | grep -q "\"remote_pubkey\": \"$alice_key\""; then
  address=$(bob newaddress p2wkh | field address)
  echo "mining 101 blocks to bob ($address)"
  mine 101 "$address"
  until [ "$(bob walletbalance | field confirmed_balance)" -gt 10000000 ] 2>/dev/null; do sleep 1; done
  bob connect "$alice_key@alice:9735" >/dev/null 2>&1 || true
  echo "bob opens a channel to alice"
  bob openchannel --node_key "$alice_key" --local_amt 5000000 >/dev/null
  mine 6 "$address"
  until bob listchannels --active_only | grep -q "\"remote_pubkey\": \"$alice_key\""; do sleep 1; done
fi

echo "baking the invoice service's macaroon (invoices:read invoices:write)"
alice bakemacaroon --save_to /shared/invoice.macaroon invoices:read invoices:write >/dev/null
cp /alice/tls.cert /shared/alice-tls.cert
chmod 0644 /shared/invoice.macaroon /shared/alice-tls.cert
echo "regtest ready: channel bob -> alice is active"
