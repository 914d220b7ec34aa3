"""Benchmark: counted tokens against plain tokens through real Envoy, side by side in one run.

Envoy (one worker, pinned to CPU 0) answers a direct-response route behind the filter; wrk, the
invoice service and Redis share CPU 1. Rounds alternate plain and counted tokens (a count of a
billion, so it never runs out); each prints requests/s at saturation and p50 at one connection,
then the medians and their ratio. Also counted: callouts and Redis scripts per 1,000 counted
requests, and what 100,000 revocations read from the store cost each Envoy in memory.

    python tests/support/bench_quota.py [--seconds 5] [--rounds 3] [--lease-size 100]

Prints figures; asserts only that every answer was a 200."""

import argparse
import base64
import os
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, so its own directory (tests/support) is first on sys.path.
from client import authorization, request
from envoy_proc import BUILDS, EnvoyProcess, use_build
from l402cli import l402, mint_token
from procs import ROOT, free_port, wait_for
from quota_stack import STORE
from redis_proc import RedisServer
from stack import INVOICER_CONFIG, Invoicer, set_value

FIXTURES = ROOT / "crates" / "l402-invoicer" / "tests" / "fixtures"


def invoicer_config(workdir: Path, port: int) -> str:
    """The shipped example with an lnd nobody answers for: leases never call lnd."""
    macaroon = workdir / "lnd.macaroon"
    minted = l402("mint", "--root-key", "00" * 32, "--identifier", "0a0b", "--location", "lnd")
    macaroon.write_bytes(base64.b64decode(minted.stdout.strip()))
    toml = INVOICER_CONFIG.read_text()
    toml = set_value(toml, "listen", json.dumps(f"127.0.0.1:{port}"))
    toml = set_value(toml, "rest_url", json.dumps("https://127.0.0.1:1"))
    toml = set_value(toml, "tls_cert_path", json.dumps(str(FIXTURES / "tls.cert")))
    toml = set_value(toml, "macaroon_path", json.dumps(str(macaroon)))
    return toml + STORE


def direct_response(config: dict):
    """The upstream is Envoy itself, and no access log is written: the figures are the filter's,
    not an upstream's or a log line's."""
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm.pop("access_log", None)
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    route.pop("route")
    route["direct_response"] = {"status": 200, "body": {"inline_string": "ok"}}


def wrk(url: str, headers: dict, connections: int, seconds: int) -> dict:
    args = ["taskset", "-c", "1", shutil.which("wrk"), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"not every answer was a 200:\n{out}")
    def percentile(label):
        found = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        return float(found.group(1)) * {"us": 1, "ms": 1000, "s": 1_000_000}[found.group(2)]
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_us": percentile("50"), "p99_us": percentile("99")}


def stat(envoy, name: str) -> int:
    return sum(int(line.partition(": ")[2]) for line in envoy.stats().splitlines()
               if line.partition(": ")[0].endswith(name))


def served_now(envoy) -> int:
    """Counted requests served: from blocks, plus the one that asked for each block."""
    return stat(envoy, "l402_quota_served_from_block") + stat(envoy, "l402_quota_leases")


def redis_scripts(invoicer) -> int:
    _, _, text = invoicer.call("GET", "/metrics")
    return sum(int(float(v)) for v in re.findall(r"l402_redis_request_duration_seconds_count\{[^}]*\} (\S+)", text))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease-size", type=int, default=100)
    parser.add_argument("--revoked", type=int, default=100_000)
    parser.add_argument("--build", choices=BUILDS, default="wasm")
    args = parser.parse_args()
    use_build(args.build)
    # Who reads revocations: each wasm VM (the worker's and the main thread's), or the module's
    # one configuration.
    readers = 2 if args.build == "wasm" else 1
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: scripts/setup.sh installs it (Debian package wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="l402-bench-quota-"))
    master_key = secrets.token_hex(32)
    with RedisServer(workdir) as redis, \
            Invoicer(workdir, invoicer_config(workdir, free_port()), master_key, name="bench-invoicer",
                     env={"L402_REDIS_URL": redis.url, "L402_ADMIN_TOKEN": "a" * 40}) as invoicer:
        def plugin(p: dict):
            p["quota"] = {"lease_size": args.lease_size}
            p["revocations"] = {"sync_interval_ms": 1000}

        with EnvoyProcess(workdir, free_port(), invoicer.port, {"L402_MASTER_KEY_1": master_key}, plugin,
                          direct_response) as envoy:
            subprocess.run(["taskset", "-apc", "0", str(envoy.process.pid)], check=True, capture_output=True)
            for pid in (invoicer.process.pid, redis.process.pid):
                subprocess.run(["taskset", "-apc", "1", str(pid)], check=True, capture_output=True)
            wait_for(lambda: stat(envoy, "l402_revocations_reads") >= readers, 15, "the first revocation read")
            far = str(int(time.time()) + 86400)
            tokens = {}
            # The plain token carries a caveat of the same length that nothing reads, so both
            # cost the same to verify and the difference is the counting alone.
            for kind, caveats in (("plain", ["weather_xxxxxxxx=1000000000"]),
                                  ("counted", ["weather_requests=1000000000"])):
                macaroon, preimage, _ = mint_token("weather", master_key, [f"weather_valid_until={far}", *caveats])
                tokens[kind] = authorization(macaroon, preimage)
                assert request(envoy.url, "/weather/today", tokens[kind]).status == 200, kind
            url = envoy.url + "/weather/today"
            results = {kind: {"rps": [], "p50_us": [], "cpu_us": []} for kind in tokens}
            counted_before = (served_now(envoy), stat(envoy, "l402_quota_leases"),
                              stat(envoy, "l402_quota_returns"), redis_scripts(invoicer))
            for round_ in range(args.rounds):
                for kind, headers in tokens.items():
                    cpu = cpu_seconds(envoy.process.pid)
                    saturated = wrk(url, headers, 16, args.seconds)
                    cpu = cpu_seconds(envoy.process.pid) - cpu
                    single = wrk(url, headers, 1, args.seconds)
                    results[kind]["rps"].append(saturated["rps"])
                    results[kind]["cpu_us"].append(cpu * 1e6 / (saturated["rps"] * args.seconds))
                    results[kind]["p50_us"].append(single["p50_us"])
                    print(f"round {round_ + 1} {kind:8} {saturated['rps']:>9,.0f} req/s (16 connections), "
                          f"{results[kind]['cpu_us'][-1]:.1f} Envoy CPU µs per request   "
                          f"p50 {single['p50_us']:>6.1f} µs (1 connection)", flush=True)
            time.sleep(2)  # idle blocks go back
            served, leases, returns, scripts = (a - b for a, b in zip(
                (served_now(envoy), stat(envoy, "l402_quota_leases"),
                 stat(envoy, "l402_quota_returns"), redis_scripts(invoicer)), counted_before))

            def median(kind, key):
                values = results[kind][key]
                return statistics.median(values), min(values), max(values)

            print()
            for key, unit in (("rps", "req/s"), ("cpu_us", "CPU µs"), ("p50_us", "µs p50")):
                p, c = median("plain", key), median("counted", key)
                print(f"{unit:7} plain {p[0]:>9,.1f} [{p[1]:,.1f}–{p[2]:,.1f}]   counted {c[0]:>9,.1f} "
                      f"[{c[1]:,.1f}–{c[2]:,.1f}]   counted/plain {c[0] / p[0]:.3f}")
            print(f"per 1,000 counted requests (lease size {args.lease_size}): "
                  f"{1000 * (leases + returns) / served:.1f} callouts, {1000 * scripts / served:.1f} Redis scripts "
                  f"({served:,} served, {leases} leases, {returns} returns)")

            # Revocations read from the store: what each id costs an Envoy (one worker + main).
            before = rss_kib(envoy.process.pid)
            redis.command("EVAL", """
                for i = 1, tonumber(ARGV[1]) do
                  redis.call('ZADD', KEYS[1], i, string.format('%064x', i))
                end
                redis.call('SET', KEYS[2], ARGV[1])
                return 0""", "2", "l402:{revoked}:ids", "l402:{revoked}:seq", str(args.revoked))
            started = time.monotonic()
            wait_for(lambda: stat(envoy, "l402_revocations_applied") >= readers * args.revoked, 300,
                     "every reader to read the revocations")
            took = time.monotonic() - started
            time.sleep(1)
            after = rss_kib(envoy.process.pid)
            print(f"{args.build}: {args.revoked:,} revoked ids read by each of {readers} readers in {took:.1f} s; "
                  f"Envoy RSS {before / 1024:.0f} → {after / 1024:.0f} MiB (+{(after - before) / 1024:.1f} MiB, "
                  f"{(after - before) * 1024 / args.revoked / readers:.0f} bytes per id per reader)")


if __name__ == "__main__":
    main()
