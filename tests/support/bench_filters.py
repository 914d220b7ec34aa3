"""Benchmark: the filter side by side with Envoy alone and with the alternatives, in one run.

Every configuration is its own Envoy (`--concurrency 1`, pinned to CPU 0, a direct-response
route, so the figures are the filter's); wrk runs on CPU 1. Rounds interleave the
configurations; each measures requests/s at saturation (16 connections) with Envoy's CPU time
per request, then p50/p99 at one connection. Medians [min–max] and the ratios follow, then the
goals. A paid request carries a valid 4-caveat token (service, expiry, capabilities, one more);
`jwt_authn` checks an HS256 token.

    python tests/support/bench_filters.py [--seconds 3] [--rounds 3]

Prints figures; asserts only that every answer was a 200."""

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_quota import cpu_seconds, direct_response, rss_kib, wrk
from client import authorization, request
from envoy_proc import NATIVE, WASM, WASM_FILTER, EnvoyProcess, http_connection_manager, use_build, without_store
from l402cli import mint_token
from procs import ROOT, free_port, require

NOOP_WASM = ROOT / "target" / "noop-filter" / "wasm32-wasip1" / "release" / "noop_filter.wasm"
# The dynamic module built with `--features noop-probe`: every request goes on untouched.
NOOP_NATIVE = ROOT / "target" / "probes" / "noop" / "native" / "libl402.so"
JWT_SECRET = secrets.token_bytes(32)
PATH = "/weather/today"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token() -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"iss": "bench", "sub": "client", "exp": int(time.time()) + 86400}).encode())
    signature = hmac.new(JWT_SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(signature)}"


def replace_filter(config: dict, replacement: dict | None):
    manager = http_connection_manager(config)
    manager["http_filters"] = [replacement if f["name"] == WASM_FILTER else f for f in manager["http_filters"]
                               if replacement is not None or f["name"] != WASM_FILTER]


def jwt_authn(cache: bool):
    provider = {
        "issuer": "bench",
        "local_jwks": {"inline_string": json.dumps(
            {"keys": [{"kty": "oct", "alg": "HS256", "kid": "k", "k": b64url(JWT_SECRET)}]})},
    }
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 100}
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"bench": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]}}


def edits(kind: str):
    """(build, config_edit) of each configuration."""
    def edit(config):
        direct_response(config)
        if kind == "envoy without filter":
            replace_filter(config, None)
        elif kind == "do-nothing wasm filter":
            config_of = next(f for f in http_connection_manager(config)["http_filters"] if f["name"] == WASM_FILTER)
            config_of["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(NOOP_WASM)
        elif kind.startswith("jwt_authn"):
            replace_filter(config, jwt_authn(cache="with" in kind))
    build = "native" if kind in ("l402 native module", "do-nothing dynamic module") else "wasm"
    return build, edit


KINDS = ["envoy without filter", "do-nothing wasm filter", "l402 wasm", "l402 wasm, no credential cache",
         "do-nothing dynamic module", "l402 native module", "jwt_authn HS256", "jwt_authn HS256 with cache"]
UNPAID_PASS = ("envoy without filter", "do-nothing wasm filter", "do-nothing dynamic module")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: scripts/setup.sh installs it (Debian package wrk)")
    for path, how in ((WASM, "scripts/build-wasm.sh"), (NATIVE, "scripts/build-native.sh"),
                      (NOOP_WASM, "scripts/bench.sh builds it"), (NOOP_NATIVE, "scripts/bench.sh builds it")):
        require(path, f"run {how}")
    workdir = Path(tempfile.mkdtemp(prefix="l402-bench-filters-"))
    master_key = secrets.token_hex(32)
    far = str(int(time.time()) + 86400)
    macaroon, preimage, _ = mint_token("weather", master_key, [f"weather_valid_until={far}",
                                                                "weather_capabilities=read",
                                                                "weather_tier=gold"])
    headers = {"jwt": {"authorization": f"Bearer {hs256_token()}"},
               "l402": authorization(macaroon, preimage)}
    envoys = {}
    try:
        for kind in KINDS:
            build, edit = edits(kind)
            use_build(build)

            def plugin(p, kind=kind):
                without_store(p)  # no invoice service here: the paid path needs none
                if "no credential cache" in kind:
                    p["credential_cache_size"] = 0
            env = {"L402_MASTER_KEY_1": master_key}
            if kind == "do-nothing dynamic module":
                env["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = str(NOOP_NATIVE.parent)
            envoys[kind] = EnvoyProcess(workdir, free_port(), free_port(), env, plugin, edit,
                                        name=f"envoy{len(envoys)}")
            subprocess.run(["taskset", "-apc", "0", str(envoys[kind].process.pid)], check=True, capture_output=True)
        use_build("wasm")
        sent = {kind: headers["jwt"] if kind.startswith("jwt") else headers["l402"] for kind in KINDS}
        for kind, envoy in envoys.items():
            resp = request(envoy.url, PATH, list(sent[kind].items()))
            assert resp.status == 200, (kind, resp.status, resp.body)
            unpaid = request(envoy.url, PATH).status
            assert (unpaid == 200) == (kind in UNPAID_PASS), (kind, unpaid)

        results = {kind: {"rps": [], "cpu_us": [], "p50_us": [], "p99_us": []} for kind in KINDS}
        for round_ in range(args.rounds):
            for kind, envoy in envoys.items():
                url = envoy.url + PATH
                cpu = cpu_seconds(envoy.process.pid)
                saturated = wrk(url, sent[kind], 16, args.seconds)
                cpu = cpu_seconds(envoy.process.pid) - cpu
                single = wrk(url, sent[kind], 1, args.seconds)
                figures = results[kind]
                figures["rps"].append(saturated["rps"])
                figures["cpu_us"].append(cpu * 1e6 / (saturated["rps"] * args.seconds))
                figures["p50_us"].append(single["p50_us"])
                figures["p99_us"].append(single["p99_us"])
                print(f"round {round_ + 1} {kind:32} {saturated['rps']:>9,.0f} req/s  "
                      f"{figures['cpu_us'][-1]:5.1f} CPU µs/req   1 connection p50 {single['p50_us']:6.1f} µs "
                      f"p99 {single['p99_us']:6.1f} µs", flush=True)
        rss = {kind: rss_kib(envoy.process.pid) / 1024 for kind, envoy in envoys.items()}
    finally:
        for envoy in envoys.values():
            envoy.stop()

    def median(kind, key):
        values = results[kind][key]
        return statistics.median(values), min(values), max(values)

    base = "envoy without filter"
    print()
    print(f"{'configuration':32} {'req/s [min–max]':>26} {'× Envoy':>8} {'CPU µs/req':>11} {'+µs':>6} "
          f"{'p50 µs':>7} {'p99 µs':>7} {'RSS MiB':>8}")
    for kind in KINDS:
        rps, low, high = median(kind, "rps")
        cpu = median(kind, "cpu_us")[0]
        print(f"{kind:32} {rps:>10,.0f} [{low:,.0f}–{high:,.0f}] {rps / median(base, 'rps')[0]:>7.2f}× "
              f"{cpu:>11.1f} {cpu - median(base, 'cpu_us')[0]:>+6.1f} {median(kind, 'p50_us')[0]:>7.1f} "
              f"{median(kind, 'p99_us')[0]:>7.1f} {rss[kind]:>8.1f}")

    def ratio(a, b):
        return median(a, "rps")[0] / median(b, "rps")[0]

    print()
    goals = [("native module ≥ 0.9× Envoy without filter", ratio("l402 native module", base), 0.9),
             ("native module ≥ 1.0× jwt_authn with cache", ratio("l402 native module", "jwt_authn HS256 with cache"), 1.0),
             ("wasm ≥ 1.3× jwt_authn without cache", ratio("l402 wasm", "jwt_authn HS256"), 1.3),
             ("wasm ≥ 0.7× Envoy without filter", ratio("l402 wasm", base), 0.7)]
    for goal, value, target in goals:
        print(f"goal: {goal:45} {value:5.2f}  {'met' if value >= target else 'NOT met'}")


if __name__ == "__main__":
    main()
