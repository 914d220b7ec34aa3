"""The invoice service under idle and slow connection floods (real binary, real lnd): genuine
challenges keep being answered, slow connections are closed within the configured time, and
memory returns once the flood is gone."""

import re
import resource
import socket
import threading
import time
from pathlib import Path

import pytest

from procs import free_port
from stack import Invoicer, invoicer_config, set_value

TIMEOUT_MS = 1500
MAX_CONNECTIONS = 256
IDLE, DRIPPING, HALF_SENT = 1100, 100, 100


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@pytest.fixture
def service(net, tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = IDLE + DRIPPING + HALF_SENT + 200
    if hard < needed:
        raise RuntimeError(f"the flood needs {needed} file descriptors; this machine's hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    config = invoicer_config(free_port(), net)
    config = set_value(config, "max_connections", str(MAX_CONNECTIONS))
    config = set_value(config, "header_read_timeout_ms", str(TIMEOUT_MS))
    with Invoicer(tmp_path, config, "77" * 32, name="flooded") as invoicer:
        yield invoicer


def closed(sock: socket.socket) -> bool:
    """Whether the peer has closed the connection (EOF or reset), without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_floods_of_idle_and_slow_connections_do_not_starve_challenges(service):
    port = service.port
    for _ in range(20):
        service.challenge()
    baseline = rss_kib(service.process.pid)

    flood = []
    for _ in range(IDLE):
        flood.append(socket.create_connection(("127.0.0.1", port)))
    for _ in range(HALF_SENT):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/challenges HTTP/1.1\r\nx-pad: " + b"a" * 7000)
        flood.append(s)
    dripping = [socket.create_connection(("127.0.0.1", port)) for _ in range(DRIPPING)]
    flood += dripping
    started = time.time()
    stop = threading.Event()

    def drip():
        for s in dripping:
            try:
                s.sendall(b"POST /v1/challenges HTTP/1.1\r\n")
            except OSError:
                pass
        while not stop.is_set():
            for s in dripping:
                try:
                    s.sendall(b"x-drip: 1\r\n")
                except OSError:
                    pass
            time.sleep(0.1)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        answered = []
        peak = baseline
        while time.time() - started < TIMEOUT_MS / 1000 * 2:
            answered.append(service.challenge()[0])
            peak = max(peak, rss_kib(service.process.pid))
            time.sleep(0.05)  # a steady trickle, well inside the per-client limit
        failed = [status for status in answered if status != 200]
        assert len(answered) >= 20 and not failed, f"{len(failed)} of {len(answered)} failed: {failed[:10]}"
        # Every flood connection is closed by the server within the header-read timeout (or
        # earlier, evicted to make room).
        deadline = started + TIMEOUT_MS / 1000 + 2.0
        while time.time() < deadline and not all(closed(s) for s in flood):
            time.sleep(0.2)
        still_open = sum(1 for s in flood if not closed(s))
        assert still_open == 0, f"{still_open} flood connections open {time.time() - started:.1f} s in"
    finally:
        stop.set()
        dripper.join()
        for s in flood:
            s.close()
    time.sleep(1)
    after = rss_kib(service.process.pid)
    metrics = service.get("/metrics")[1]
    print(f"service RSS: {baseline} KiB before, {peak} KiB peak, {after} KiB after; "
          f"{len(answered)} challenges answered during the flood")
    assert peak - baseline < 64 * 1024, f"the flood pinned {peak - baseline} KiB"
    assert after - baseline < 16 * 1024, f"{after - baseline} KiB not returned"
    assert "l402_connections_open 0" in metrics or "l402_connections_open 1" in metrics
    timeouts = int(re.search(r"^l402_connection_header_timeouts_total (\d+)", metrics, re.M).group(1))
    assert timeouts > 0, "the flood's last connections were closed by the header-read timeout"
