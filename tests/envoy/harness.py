"""Processes for the filter's Envoy tests: real Envoy loading the real .wasm, a real upstream, and
a STAND-IN invoice service that mints real tokens with the `l402` command. The stand-in exists for
the faults the real service cannot be made to produce on demand (a slow answer, garbage, a 500);
the paid flow against the real invoice service and regtest lnd is in tests/e2e."""

import hashlib
import json
import os
import secrets
import sys
import subprocess
import time
import yaml
from http.server import BaseHTTPRequestHandler
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from envoy_proc import WASM, EnvoyProcess, envoy_command, render, require  # noqa: E402,F401
from procs import L402, ROOT, free_port  # noqa: E402,F401
from upstream import Recorder, UpstreamHandler  # noqa: E402,F401

MASTER_KEY = "5e" * 32
REVOKED_TOKEN_ID = "00000001" + "ee" * 28


def l402(*args: str) -> str:
    cli = require(L402, "run scripts/test.sh (it builds target/release/l402)")
    return subprocess.run([str(cli), *args], check=True, capture_output=True, text=True).stdout.strip()


def mint(service: str, caveats=(), preimage: str | None = None, token_id: str | None = None, key: str = MASTER_KEY):
    """A token as the invoice service mints it; returns (macaroon_base64, preimage_hex, token_id)."""
    preimage = preimage or secrets.token_hex(32)
    token_id = token_id or "00000001" + secrets.token_hex(28)
    payment_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
    args = ["mint", "--master-key", f"1:{key}", "--payment-hash", payment_hash, "--token-id", token_id,
            "--caveat", f"services={service}:0", "--caveat", f"{service}_capabilities="]
    for c in caveats:
        args += ["--caveat", c]
    return l402(*args), preimage, token_id


class StandInInvoiceHandler(BaseHTTPRequestHandler):
    """STAND-IN for the invoice service (issue 4 replaces it with the real one on regtest lnd):
    mints a real macaroon with the `l402` command, but its invoice is not a payable one. Its modes
    produce the faults the filter must survive: slow, garbage, 429, 500."""

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(request)
        mode = self.server.mode
        if mode == "slow":
            time.sleep(3)
        if mode == "garbage":
            return self.reply(200, b"this is not json")
        if mode == "429":
            return self.reply(429, b'{"error":"slow down"}', [("retry-after", "17")])
        if mode == "500":
            return self.reply(500, b'{"error":"lnd said no"}')
        macaroon, _, _ = mint(request["service"])
        body = json.dumps({"macaroon": macaroon, "invoice": "lnbcrt10n1standinnotpayable",
                           "payment_hash": "00" * 32, "amount_msat": 10000}).encode()
        self.reply(200, body)

    def reply(self, status, body, headers=()):
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


def shipped_plugin() -> dict:
    """The plugin configuration of envoy/envoy.yaml, parsed."""
    config = yaml.safe_load((ROOT / "envoy" / "envoy.yaml").read_text())
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    return json.loads(wasm["typed_config"]["config"]["configuration"]["value"])


def envoy_env():
    return {**os.environ, "L402_MASTER_KEY_1": MASTER_KEY}


class Envoy:
    """Envoy with the filter, the recording upstream and the stand-in invoice service."""

    def __init__(self, workdir: Path, plugin_edit=None, config_edit=None):
        upstream_port = free_port()
        self.invoicer_port = free_port()
        self.upstream = Recorder(upstream_port, UpstreamHandler)
        self.invoicer = Recorder(self.invoicer_port, StandInInvoiceHandler)
        self.proxy = EnvoyProcess(workdir, upstream_port, self.invoicer_port,
                                  {"L402_MASTER_KEY_1": MASTER_KEY}, plugin_edit, config_edit)
        self.listener = self.proxy.listener
        self.log = self.proxy.log

    def stop_invoicer(self):
        self.invoicer.stop()

    def start_invoicer(self):
        self.invoicer = Recorder(self.invoicer_port, StandInInvoiceHandler)

    def stats(self, fmt=""):
        return self.proxy.stats(fmt)

    def stop(self):
        self.proxy.stop()
        self.upstream.stop()
        try:
            self.invoicer.stop()
        except OSError:
            pass
