"""Processes for the filter's Envoy tests: real Envoy loading the real .wasm, a real upstream, and
a STAND-IN invoice service that mints real tokens with the `l402` command. The stand-in exists for
the faults the real service cannot be made to produce on demand (a slow answer, garbage, a 500);
the paid flow against the real invoice service and regtest lnd is in tests/e2e."""

import json
import os
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from envoy_proc import EnvoyProcess
from l402cli import mint_token
from procs import free_port
from upstream import Recorder, UpstreamHandler

MASTER_KEY = "5e" * 32
REVOKED_TOKEN_ID = "00000001" + "ee" * 28


def mint(service: str, caveats=(), preimage: str | None = None, token_id: str | None = None, key: str = MASTER_KEY):
    """A token as the invoice service mints it, under the tests' master key unless `key` is given;
    returns (macaroon_base64, preimage_hex, token_id)."""
    return mint_token(service, key, caveats, preimage, token_id)


class StandInInvoiceHandler(BaseHTTPRequestHandler):
    """STAND-IN for the invoice service (tests/e2e runs the real one on regtest lnd): mints a real
    macaroon with the `l402` command, but its invoice is not a payable one. Its modes produce the
    faults the filter must survive: slow, garbage, 429, 500. It answers the revocation reads with
    an empty list."""

    def do_GET(self):
        """The revocation reads the shipped configuration makes: none revoked, in one page."""
        if self.path.startswith("/v1/revocations?"):
            return self.reply(200, json.dumps({"ids": [], "cursor": 0, "more": False, "epoch": "stand-in"}).encode())
        self.reply(404, b'{"error":"no such path"}')

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


def envoy_env():
    return {**os.environ, "L402_MASTER_KEY_1": MASTER_KEY}


class Envoy:
    """Envoy with the filter, the recording upstream and the stand-in invoice service. Use it in a
    `with` block (or through a fixture that does): everything it started is stopped on leaving,
    and if starting fails part way."""

    def __init__(self, workdir: Path, plugin_edit=None, config_edit=None, first_read=True):
        upstream_port = free_port()
        self.invoicer_port = free_port()
        self.upstream = Recorder(upstream_port, UpstreamHandler)
        self.invoicer = Recorder(self.invoicer_port, StandInInvoiceHandler)
        try:
            self.proxy = EnvoyProcess(workdir, upstream_port, self.invoicer_port,
                                      {"L402_MASTER_KEY_1": MASTER_KEY}, plugin_edit, config_edit,
                                      first_read=first_read)
        except BaseException:
            self.upstream.stop()
            self.invoicer.stop()
            raise
        self.listener = self.proxy.listener
        self.log = self.proxy.log

    @property
    def url(self) -> str:
        return self.proxy.url

    def stop_invoicer(self):
        self.invoicer.stop()

    def start_invoicer(self):
        self.invoicer = Recorder(self.invoicer_port, StandInInvoiceHandler)

    def stats(self, fmt=""):
        return self.proxy.stats(fmt)

    def stop(self):
        self.proxy.stop()
        self.upstream.stop()
        self.invoicer.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
