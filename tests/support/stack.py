"""The whole paywall on one machine: regtest Lightning (alice, bob), the real invoice service in
front of alice, real Envoy with the filter, and a small upstream API.

    with Stack(workdir, net) as stack:   # net: a started regtest.Regtest
        stack.envoy.url                  # http://127.0.0.1:<port>, /weather/…, /news/…, /flash/…
        stack.invoicer.url               # the invoice service (callout target, probes, metrics)
        stack.upstream.requests          # what reached the API

Test-only additions to the shipped configs: a `flash` service whose tokens live FLASH_SECONDS,
and a per-client burst large enough for the concurrency tests.
"""

import base64
import json
import os
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from envoy_proc import EnvoyProcess, without_store
from l402cli import l402
from procs import ROOT, Process, free_port, require, wait_for
from upstream import Recorder, UpstreamHandler

INVOICER_BIN = Path(os.environ.get("L402_INVOICER_BIN", ROOT / "target" / "release" / "l402-invoicer"))
INVOICER_CONFIG = ROOT / "crates" / "l402-invoicer" / "invoicer.toml"
FLASH_SECONDS = 3
FLASH_SERVICE = f"""
[[services]]
name = "flash"
price_sat = 1
timeout_seconds = {FLASH_SECONDS}
memo = "Flash API access"
"""


def set_value(toml: str, key: str, value: str) -> str:
    """Replaces the first `key = …` line of the shipped example, keeping everything else."""
    pattern = re.compile(rf"^{re.escape(key)} = .*$", re.M)
    if not pattern.search(toml):
        raise KeyError(f"{key} is not in {INVOICER_CONFIG}")
    return pattern.sub(lambda _: f"{key} = {value}", toml, count=1)


def invoicer_config(port: int, net, per_client_burst=1000, extra="", per_client_rate=100.0) -> str:
    toml = INVOICER_CONFIG.read_text()
    toml = set_value(toml, "listen", json.dumps(f"127.0.0.1:{port}"))
    toml = set_value(toml, "rest_url", json.dumps(net.alice.rest_url))
    toml = set_value(toml, "tls_cert_path", json.dumps(str(net.alice.tls_cert)))
    toml = set_value(toml, "macaroon_path", json.dumps(str(net.invoice_macaroon)))
    toml = set_value(toml, "per_client", f"{{ burst = {per_client_burst}, per_second = {per_client_rate} }}")
    toml = set_value(toml, "global", "{ burst = 10000, per_second = 1000.0 }")
    return toml + extra


class Invoicer:
    """The real invoice service with `config`, started and healthy; stopped on leaving a `with`
    block."""

    def __init__(self, workdir: Path, config: str, master_key: str, name="invoicer", env: dict | None = None):
        self.port = int(re.search(r'^listen = "127\.0\.0\.1:(\d+)"', config, re.M).group(1))
        self.config = workdir / f"{name}.toml"
        self.config.write_text(config)
        self.log = workdir / f"{name}.log"
        self.env = {**os.environ, "L402_MASTER_KEY_1": master_key, "RUST_LOG": "info", **(env or {})}
        self.name = name
        self.process = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        binary = require(INVOICER_BIN, "run scripts/test.sh or cargo build --release -p l402-invoicer")
        self.process = Process(self.name, [str(binary), "--config", str(self.config)], self.log, env=self.env)
        try:
            wait_for(lambda: self.get("/healthz")[0] == 200, 30, f"{self.name} /healthz", self.process)
        except BaseException:
            self.process.stop()
            raise

    def stop(self):
        if self.process:
            self.process.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def call(self, method: str, path: str, body=None, timeout=30):
        """(status, headers, parsed JSON or text) without raising on HTTP errors."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                status, headers, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, e.headers, e.read()
        try:
            return status, headers, json.loads(raw)
        except ValueError:
            return status, headers, raw.decode(errors="replace")

    def get(self, path: str):
        status, _, body = self.call("GET", path)
        return status, body

    def challenge(self, service="weather", method="GET", path="/weather/today", client_ip="127.0.0.1:40000"):
        return self.call("POST", "/v1/challenges", {"service": service, "method": method, "path": path,
                                                    "host": "api.example", "client_ip": client_ip,
                                                    "reason": "missing"})


def stack_plugin(plugin: dict):
    """The flash service's route; and this stack's invoice service has no store to read
    revocations from (tests/e2e/test_quota.py runs the one that does)."""
    plugin["routes"].insert(1, {"match": {"prefix": "/flash/"}, "service": "flash"})
    without_store(plugin)


class Stack:
    """The upstream, the invoice service and Envoy, started in that order; stopped in the reverse
    order on leaving a `with` block (or by stop()), and if starting fails part way."""

    def __init__(self, workdir: Path, net, per_client_burst=1000, per_client_rate=100.0,
                 invoicer_env: dict | None = None):
        self.net = net
        self.workdir = workdir
        self.master_key = secrets.token_hex(32)
        self.envoy = self.invoicer = None
        upstream_port = free_port()
        self.upstream = Recorder(upstream_port, UpstreamHandler)
        try:
            config = invoicer_config(free_port(), net, per_client_burst, FLASH_SERVICE, per_client_rate)
            self.invoicer = Invoicer(workdir, config, self.master_key, env=invoicer_env)
            self.envoy = EnvoyProcess(workdir, upstream_port, self.invoicer.port,
                                      {"L402_MASTER_KEY_1": self.master_key}, stack_plugin)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for part in (self.envoy, self.invoicer, self.upstream):
            if part is not None:
                part.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def check_config(text: str, cert_path: str, macaroon_path: str, workdir: Path) -> subprocess.CompletedProcess:
    """`l402-invoicer --check` on a deployment's config whose lnd files exist only at run time:
    the fixture certificate and a freshly minted macaroon stand in for them."""
    fixtures = ROOT / "crates" / "l402-invoicer" / "tests" / "fixtures"
    minted = l402("mint", "--root-key", "00" * 32, "--identifier", "0a0b", "--location", "lnd")
    macaroon = workdir / "invoice.macaroon"
    macaroon.write_bytes(base64.b64decode(minted.stdout.strip()))
    config = workdir / "invoicer.toml"
    config.write_text(text.replace(cert_path, str(fixtures / "tls.cert")).replace(macaroon_path, str(macaroon)))
    binary = require(INVOICER_BIN, "cargo build --release -p l402-invoicer")
    return subprocess.run([str(binary), "--config", str(config), "--check"], capture_output=True, text=True,
                          env={**os.environ, "L402_MASTER_KEY_1": secrets.token_hex(32)})
