"""Benchmark: how the filter's cost grows with the work, for the .wasm and the dynamic module.

One Envoy per configuration (`--concurrency 1`, pinned to CPU 0, a direct-response route, wrk
on CPU 1, 16 connections): Envoy's CPU time per paid request, and its memory, as the token
carries more caveats, the request more header bytes, the configuration more routes (prefix and
regex, the paid route last), and the static revocation list more ids. One short run each: the
shape (flat or linear), not the third digit.

    python tests/support/bench_growth.py [--seconds 2]

Prints figures; asserts only that every answer was a 200."""

import argparse
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

from bench_filters import PATH
from bench_quota import cpu_seconds, direct_response, rss_kib, wrk
from client import authorization, request
from envoy_proc import EnvoyProcess, use_build
from l402cli import mint_token
from procs import free_port


def token(master_key: str, caveats: int) -> dict:
    """A token with `caveats` caveats in all (the minted `services` one, an expiry, notes; at
    most 64, the protocol core's limit)."""
    far = str(int(time.time()) + 86400)
    extra = [f"weather_note{i}=x" for i in range(caveats - 2)]
    macaroon, preimage, _ = mint_token("weather", master_key, [f"weather_valid_until={far}", *extra])
    return authorization(macaroon, preimage)


def other_routes(count: int, kind: str) -> list[dict]:
    """`count` routes that the paid path does not match, before the shipped ones."""
    match = (lambda i: {"prefix": f"/svc{i}/"}) if kind == "prefix" else (lambda i: {"regex": f"^/svc{i}/[a-z]+$"})
    return [{"match": match(i), "service": f"svc{i}"} for i in range(count)]


def variants(master_key: str):
    """(axis, value, plugin edit, request headers)"""
    four = token(master_key, 4)
    for n in (2, 4, 16, 64):
        yield "caveats", n, None, token(master_key, n)
    for kib in (0, 4, 16):
        filler = {f"x-filler-{i}": "v" * 200 for i in range(kib * 1024 // 220)}
        yield "header KiB", kib, None, {**four, **filler}
    for kind in ("prefix", "regex"):
        for n in (1, 10, 100):
            def routes(p, n=n, kind=kind):
                p["routes"] = other_routes(n - 1, kind) + p["routes"]
            yield f"{kind} routes", n, routes, four
    for n in (0, 1_000, 100_000):
        def revoked(p, n=n):
            p["revoked_token_ids"] = [f"{i:064x}" for i in range(1, n + 1)]
        yield "revoked ids", n, revoked, four


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=2)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="l402-bench-growth-"))
    master_key = secrets.token_hex(32)
    print(f"{'axis':16} {'value':>8}   {'wasm CPU µs/req':>15} {'RSS MiB':>8}   {'native CPU µs/req':>17} {'RSS MiB':>8}")
    for axis, value, edit, headers in variants(master_key):
        figures = []
        for build in ("wasm", "native"):
            use_build(build)
            with EnvoyProcess(workdir, free_port(), free_port(), {"L402_MASTER_KEY_1": master_key}, edit,
                              direct_response, name=f"growth-{build}") as envoy:
                subprocess.run(["taskset", "-apc", "0", str(envoy.process.pid)], check=True, capture_output=True)
                resp = request(envoy.url, PATH, list(headers.items()))
                assert resp.status == 200, (axis, value, build, resp.status, resp.body)
                cpu = cpu_seconds(envoy.process.pid)
                done = wrk(envoy.url + PATH, headers, 16, args.seconds)
                cpu = cpu_seconds(envoy.process.pid) - cpu
                figures.append((cpu * 1e6 / (done["rps"] * args.seconds), rss_kib(envoy.process.pid) / 1024))
        (wasm_cpu, wasm_rss), (native_cpu, native_rss) = figures
        print(f"{axis:16} {value:>8,}   {wasm_cpu:>15.1f} {wasm_rss:>8.1f}   {native_cpu:>17.1f} {native_rss:>8.1f}",
              flush=True)
    use_build("wasm")


if __name__ == "__main__":
    main()
