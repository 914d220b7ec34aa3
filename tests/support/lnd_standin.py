"""STAND-IN for lnd's REST API, for the faults real lnd cannot be made to produce on demand:
answering garbage, or answering too slowly. It serves HTTPS with the test fixture certificate
(crates/l402-invoicer/tests/fixtures), so the invoice service pins that certificate."""

import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from procs import ROOT, free_port

FIXTURES = ROOT / "crates" / "l402-invoicer" / "tests" / "fixtures"
CERT = FIXTURES / "tls.cert"


class _Handler(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("content-length", "0"))
        if length:
            self.rfile.read(length)
        server = self.server
        server.hits += 1
        if server.delay:
            time.sleep(server.delay)
        body = server.body
        try:
            self.send_response(server.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args):
        pass


class LndStandIn(ThreadingHTTPServer):
    """The stand-in on a free port, serving until stopped; stopped on leaving a `with` block
    (tests get it through a fixture that always stops it)."""

    daemon_threads = True

    def __init__(self, status=200, body=b"this is not json", delay=0.0):
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.status, self.body, self.delay, self.hits = status, body, delay, 0
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(CERT, FIXTURES / "tls.key")
        self.socket = context.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def stop(self):
        self.shutdown()
        self.server_close()

    def __exit__(self, *exc):
        self.stop()
