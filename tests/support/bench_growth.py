"""Benchmark: how the filter's cost grows with the work, for the .wasm and the dynamic module.

For each row three Envoys (`--concurrency 1`, pinned to CPU 0, a direct-response route; wrk on
CPU 1, 16 connections): Envoy alone, with the .wasm and with the dynamic module, in interleaved
rounds. Printed: Envoy alone's CPU time per request, what each build adds to it (medians), and
each build's memory, as the token carries more caveats, the request more header bytes, the
configuration more routes (prefix and regex, the paid route last), and the static revocation list
more ids. Short runs: the shape (flat or linear), not the third digit.

    python tests/support/bench_growth.py [--seconds 2] [--rounds 3]

Prints figures; asserts only that every answer was a 200."""

import argparse
import json
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_filters import PATH, replace_filter
from bench_quota import cpu_seconds, direct_response, rss_kib, wrk
from client import authorization, request
from envoy_proc import EnvoyProcess, use_build, without_store
from l402cli import l402, mint_token
from procs import free_port


def token(master_key: str, caveats: int) -> tuple[dict, int]:
    """A token with `caveats` caveats in all (the protocol core takes at most 64): the two every
    token has (service, capabilities), an expiry, and notes nobody reads; 2 is a token without
    expiry. Returns the headers and the count the token really carries."""
    far = str(int(time.time()) + 86400)
    extra = [] if caveats <= 2 else [f"weather_valid_until={far}"] + [f"weather_note{i}=x" for i in range(caveats - 3)]
    macaroon, preimage, _ = mint_token("weather", master_key, extra)
    carried = len(json.loads(l402("decode", macaroon).stdout)["caveats"])
    return authorization(macaroon, preimage), carried


def other_routes(count: int, kind: str) -> list[dict]:
    """`count` routes that the paid path does not match, before the shipped ones."""
    match = {
        "prefix": lambda i: {"prefix": f"/svc{i}/"},
        "regex": lambda i: {"regex": f"^/svc{i}/[a-z]+$"},
        # No literal prefix to pre-filter on: only the combined automaton keeps this flat.
        "unprefixed regex": lambda i: {"regex": f"^/[a-z]*v{i}/[a-z]+$"},
    }[kind]
    return [{"match": match(i), "service": f"svc{i}"} for i in range(count)]


def variants(master_key: str):
    """(axis, value, plugin edit, request headers)"""
    four, _ = token(master_key, 4)
    for count in (2, 4, 16, 64):
        headers, caveats = token(master_key, count)
        yield "caveats", caveats, None, headers
    for kib in (0, 4, 16):
        filler = {f"x-filler-{i}": "v" * 200 for i in range(kib * 1024 // 220)}
        yield "header KiB", kib, None, {**four, **filler}
    for kind in ("prefix", "regex", "unprefixed regex"):
        for n in (1, 10, 100):
            def routes(p, n=n, kind=kind):
                p["routes"] = other_routes(n - 1, kind) + p["routes"]
            yield f"{kind} routes", n, routes, four
    for n in (0, 1_000, 100_000):
        def revoked(p, n=n):
            p["revoked_token_ids"] = [f"{i:064x}" for i in range(1, n + 1)]
        yield "revoked ids", n, revoked, four


def no_store(edit):
    """`edit` on a configuration that reads no revocations: no invoice service runs here."""
    def both(p):
        without_store(p)
        if edit:
            edit(p)
    return both


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="l402-bench-growth-"))
    master_key = secrets.token_hex(32)
    print(f"{'axis':24} {'value':>8}  {'Envoy alone':>11}  {'wasm +µs':>9} {'RSS MiB':>8}  {'native +µs':>10} {'RSS MiB':>8}"
          "   (CPU µs per request: medians of rounds; RSS after the runs)")
    builds = ("none", "wasm", "native")
    for axis, value, edit, headers in variants(master_key):
        envoys = {}
        try:
            for build in builds:
                use_build("wasm" if build == "none" else build)
                config_edit = direct_response if build != "none" else none
                envoys[build] = EnvoyProcess(workdir, free_port(), free_port(), {"L402_MASTER_KEY_1": master_key},
                                             no_store(edit), config_edit, name=f"growth-{build}")
                subprocess.run(["taskset", "-apc", "0", str(envoys[build].process.pid)], check=True,
                               capture_output=True)
                resp = request(envoys[build].url, PATH, list(headers.items()))
                assert resp.status == 200, (axis, value, build, resp.status, resp.body)
            cpu = {build: [] for build in builds}
            for _ in range(args.rounds):
                for build, envoy in envoys.items():
                    before = cpu_seconds(envoy.process.pid)
                    done = wrk(envoy.url + PATH, headers, 16, args.seconds)
                    cpu[build].append((cpu_seconds(envoy.process.pid) - before) * 1e6 / (done["rps"] * args.seconds))
            rss = {build: rss_kib(envoy.process.pid) / 1024 for build, envoy in envoys.items()}
        finally:
            for envoy in envoys.values():
                envoy.stop()
        med = {build: statistics.median(values) for build, values in cpu.items()}
        print(f"{axis:24} {value:>8,}  {med['none']:>11.1f}  {med['wasm'] - med['none']:>+9.1f} {rss['wasm']:>8.1f}  "
              f"{med['native'] - med['none']:>+10.1f} {rss['native']:>8.1f}", flush=True)
    use_build("wasm")


def none(config):
    """Envoy alone, with the same direct response: the baseline of each row."""
    direct_response(config)
    replace_filter(config, None)


if __name__ == "__main__":
    main()
