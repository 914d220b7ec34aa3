"""Benchmark: challenges per second and latency percentiles of the invoice service against real
lnd on regtest (each challenge is a real AddInvoice on alice plus a mint), driven by wrk.

    python tests/support/bench_invoicer.py [--seconds 10] [--connections 8]

Prints figures; asserts only that every answer was a 200 and that lnd holds the invoices."""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Run as a script, so its own directory (tests/support) is first on sys.path.
from procs import free_port
from regtest import Regtest
from stack import Invoicer, invoicer_config, set_value

BODY = {"service": "weather", "method": "GET", "path": "/weather/bench", "host": "api.example",
        "client_ip": "127.0.0.1:40000", "reason": "missing"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("wrk is missing: scripts/setup.sh installs it (Debian package wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="l402-bench-"))
    with Regtest(workdir, log=lambda m: print(f"[regtest] {m}", flush=True)) as net:
        config = invoicer_config(free_port(), net)
        unlimited = "{ burst = 1000000, per_second = 1000000.0 }"
        config = set_value(set_value(config, "per_client", unlimited), "global", unlimited)
        with Invoicer(workdir, config, "7e" * 32, name="bench-invoicer") as invoicer:
            script = workdir / "post.lua"
            script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                              f"wrk.body = {json.dumps(json.dumps(BODY))}\n")
            before = net.alice.invoice_count()
            out = subprocess.run([wrk, "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                                  "-s", str(script), f"{invoicer.url}/v1/challenges"],
                                 check=True, capture_output=True, text=True).stdout
            created = net.alice.invoice_count() - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(f"invoice service vs regtest lnd ({args.connections} connections, {args.seconds} s): "
          f"{rate:.0f} challenges/s, p50 {p50}, p99 {p99}, {requests} challenges, {created} invoices on lnd")
    if errors or created < requests:
        sys.exit(f"benchmark saw failures:\n{out}")


if __name__ == "__main__":
    main()
