"""The `l402` command line tool (target/release/l402), the one way the tests, the stand-ins and
the demo run it: minting tokens as the invoice service does, decoding and verifying them."""

import hashlib
import json
import os
import secrets
import subprocess

from procs import ROOT, require

L402 = ROOT / "target" / "release" / "l402"


def l402(*args: str, check=True, env: dict | None = None) -> subprocess.CompletedProcess:
    """`l402 ARGS`, output captured as text. With `check`, a non-zero exit fails with the tool's
    own message (only the subcommand is named: the arguments may hold a master key)."""
    cli = require(L402, "cargo build --release -p l402-cli (scripts/test.sh builds it)")
    done = subprocess.run([str(cli), *args], capture_output=True, text=True,
                          env={**os.environ, **env} if env else None)
    if check and done.returncode != 0:
        raise RuntimeError(f"`l402 {args[0] if args else ''}` exited {done.returncode}: {done.stderr.strip()}")
    return done


def decode(macaroon_b64: str) -> dict:
    """`l402 decode`: the macaroon's caveats and its L402 identifier (token id, payment hash)."""
    return json.loads(l402("decode", macaroon_b64).stdout)


def mint_token(service: str, master_key: str, caveats=(), preimage: str | None = None,
               token_id: str | None = None) -> tuple[str, str, str]:
    """A token for `service` as the invoice service mints it (key id 1), paid by `preimage`
    (random unless given); returns (macaroon_base64, preimage_hex, token_id)."""
    preimage = preimage or secrets.token_hex(32)
    token_id = token_id or "00000001" + secrets.token_hex(28)
    payment_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    args = ["mint", "--master-key", f"1:{master_key}", "--payment-hash", payment_hash, "--token-id", token_id,
            "--caveat", f"services={service}:0", "--caveat", f"{service}_capabilities="]
    for caveat in caveats:
        args += ["--caveat", caveat]
    return l402(*args).stdout.strip(), preimage, token_id
