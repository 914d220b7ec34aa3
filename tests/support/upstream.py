"""The protected API in tests and the demo: a real HTTP server that answers 200 with JSON and
records every request that reached it (so a test can assert that nothing unpaid got through)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder(ThreadingHTTPServer):
    """A server on `port` that records what reached it; stopped on leaving a `with` block."""

    daemon_threads = True
    allow_reuse_address = True
    # Several Envoys with several workers open many connections at once; the default backlog of
    # 5 would refuse some (Envoy's 503), which is not what a test of the filter is about.
    request_queue_size = 128

    def __init__(self, port: int, handler):
        super().__init__(("127.0.0.1", port), handler)
        self.requests = []
        self.mode = "ok"
        self.stopped = False
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """Stops serving and frees the port; a second call does nothing."""
        if not self.stopped:
            self.stopped = True
            self.shutdown()
            self.server_close()

    def __exit__(self, *exc):
        self.stop()


class UpstreamHandler(BaseHTTPRequestHandler):
    """Answers 200 with what it saw; `x-l402-token-id` is what the filter forwards once paid."""

    def do_GET(self):
        headers = {k.lower(): v for k, v in self.headers.items()}
        # `lines` keeps every line of a repeated header, which `headers` folds to its last.
        lines = [(k.lower(), v) for k, v in self.headers.items()]
        self.server.requests.append({"method": self.command, "path": self.path, "headers": headers,
                                     "lines": lines})
        body = json.dumps({"ok": True, "path": self.path,
                           "paid_with_token": headers.get("x-l402-token-id")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass
