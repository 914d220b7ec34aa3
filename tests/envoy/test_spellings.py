"""tests/spellings/cases.json in real Envoy, over HTTP/1.1 and HTTP/2 (raw frames, non-UTF-8
pseudo-headers included), with Envoy's own path normalisation on (the shipped config) and off:
no spelling of a paid request reaches the upstream unpaid, and the free ones still do."""

import json

import pytest

from envoy_proc import http_connection_manager, shipped_plugin, use_build
from harness import Envoy, mint
from procs import ROOT
from upstreams import PaidAreas
from wire import http1, http2

TABLE = json.loads((ROOT / "tests" / "spellings" / "cases.json").read_text())
# Envoy's own path normalisation in envoy/envoy.yaml, as the connection manager's settings.
NORMALISATION = {"normalize_path": True, "merge_slashes": True,
                 "path_with_escaped_slashes_action": "REJECT_REQUEST"}


def unescape(text: str) -> bytes:
    """`\\xHH` in the table stands for the byte 0xHH."""
    out, i = bytearray(), 0
    while i < len(text):
        if text.startswith("\\x", i):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            out += text[i].encode()
            i += 1
    return bytes(out)


def table_routes(plugin):
    plugin["unmatched"] = "pass"
    plugin["routes"] += TABLE["extra_routes"]


def normalisation_off(config: dict):
    """Removes Envoy's path normalisation settings, so that the filter alone decides."""
    manager = http_connection_manager(config)
    for key, value in NORMALISATION.items():
        assert manager.get(key) == value, f"envoy/envoy.yaml no longer has {key}: {value}"
        del manager[key]


@pytest.fixture(scope="module", params=["envoy_normalises", "envoy_does_not_normalise"])
def proxy(request, tmp_path_factory, filter_build):
    use_build(filter_build)
    edit = normalisation_off if request.param == "envoy_does_not_normalise" else None
    with Envoy(tmp_path_factory.mktemp(request.param), plugin_edit=table_routes, config_edit=edit) as envoy:
        envoy.normalises = edit is None
        yield envoy


def shipped_routes():
    return shipped_plugin()["routes"] + TABLE["extra_routes"]


AREAS = PaidAreas(shipped_routes())


def parts(case):
    method = case.get("method", "GET").encode()
    path = unescape(case["path"])
    host = unescape(case.get("host", "api.example.com"))
    headers = {k: unescape(v).decode("latin-1") for k, v in case.get("headers", {}).items()}
    return method, path, host, headers


def send(proxy, case, protocol):
    method, path, host, extra = parts(case)
    # HTTP/2 header names are lower case by definition; HTTP/1.1 sends them as the table spells them.
    headers = [((k.lower() if protocol == "http2" else k).encode(), v.encode("latin-1")) for k, v in extra.items()]
    if case.get("grpc"):
        headers += [(b"content-type", b"application/grpc"), (b"te", b"trailers")]
    client = http1 if protocol == "http1" else http2
    return client(proxy.listener, method, path, host, headers)


def outcome(status, headers):
    """What the client was told. gRPC answers are HTTP 200 with grpc-status: our challenge carries
    WWW-Authenticate; Envoy's own refusals (grpc-status 13 without it) count as a refusal."""
    grpc = headers.get("grpc-status")
    if status == 200 and grpc is not None:
        if "www-authenticate" in headers:
            return 402
        return {"0": 200, "3": 400, "5": 404}.get(grpc)
    return status


def test_the_table_agrees_with_the_upstream_models():
    """Every `paid` spelling is routed into a paid area by some modelled upstream, and no `pass`
    spelling is, so the table's labels do not rest on the filter's own reading."""
    wrong = []
    for case in TABLE["cases"]:
        method, path, host, headers = parts(case)
        models = AREAS.paid(method.decode("latin-1"), path, host, headers)
        if (case["expect"] == "paid") != bool(models) and case["expect"] != "refused":
            wrong.append(f"{case}: models {models}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_no_spelling_of_a_paid_request_reaches_the_upstream_unpaid(proxy, protocol):
    assert len(TABLE["cases"]) >= 100
    failures = []
    for case in TABLE["cases"]:
        proxy.upstream.requests.clear()
        proxy.invoicer.requests.clear()
        status, headers, _ = send(proxy, case, protocol)
        told = outcome(status, headers)
        reached = proxy.upstream.requests
        # Whatever reached the upstream must not be a paid request under any model's reading.
        paid_reach = [r["path"] for r in reached
                      if AREAS.paid(r["method"], r["path"].encode("latin-1"), r["headers"].get("host", "").encode(),
                                    r["headers"])]
        expect = case["expect"]
        if expect == "pass":
            ok = told == 200 and len(reached) == 1
        elif not proxy.normalises:
            # The filter alone decides: nothing unpaid reaches the upstream.
            ok = not reached and told in (None, 400, 402, 404, 414)
        else:
            # Envoy may have normalised a spelling into a free path before the filter saw it.
            ok = not paid_reach and (told in (None, 400, 402, 404, 414) or (told == 200 and reached))
        if ok and told == 402 and case.get("service"):
            ok = proxy.invoicer.requests[-1]["service"] == case["service"]
        if not ok:
            failures.append(f"{case} -> status {told}, upstream saw {[r['path'] for r in reached]}")
    assert not failures, f"{len(failures)} of {len(TABLE['cases'])}:\n" + "\n".join(failures)


def test_paid_spellings_with_a_valid_token_are_served(proxy):
    """The other side: canonical matching does not lock out a paying client."""
    macaroon, preimage, _ = mint("weather")
    auth = [(b"authorization", f"L402 {macaroon}:{preimage}".encode())]
    for path in [b"/weather/today", b"//weather/./today", b"/WEATHER/today", b"/weather;v=1/today"]:
        proxy.upstream.requests.clear()
        status, _, _ = http1(proxy.listener, b"GET", path, b"api.example.com", auth)
        assert status == 200 and len(proxy.upstream.requests) == 1, path


def mutations(seed: int, count: int):
    """Spellings made by stacking random rewrites of paid and free paths: the variants a reviewer
    tries beyond any table (case, escapes, dot segments, `;`, `\\`, doubled slashes, queries)."""
    import random
    rng = random.Random(seed)
    bases = ["/weather/today", "/news/today", "/premium/report", "/vip/x", "/reports/q1",
             "/weather.v1.Forecast/Get", "/healthz", "/other/page", "/weathers"]

    def at_slash(path, insert, first=0):
        """`insert` before a `/` at index `first` or later (the leading one keeps its place)."""
        slashes = [i for i, c in enumerate(path) if c == "/" and i >= first]
        if not slashes:
            return path + insert
        i = rng.choice(slashes)
        return path[:i] + insert + path[i:]

    rewrites = [
        lambda p: "".join(c.swapcase() if c.isalpha() and rng.random() < 0.3 else c for c in p),
        # Letters g-z only, so the hex digits of an earlier escape are never encoded again.
        lambda p: "".join(f"%{ord(c):02{rng.choice('xX')}}" if c.lower() in "ghijklmnopqrstuvwxyz"
                          and rng.random() < 0.3 else c for c in p),
        lambda p: at_slash(p, rng.choice(["/.", "/", "/x/..", "/x/%2e%2e", "/x/.%2E", "/x/..;"])),
        lambda p: at_slash(p, rng.choice([";", ";a=1", ";jsessionid=9"]), first=1),
        lambda p: p[0] + p[1:].replace("/", "\\", rng.randint(1, 3)),
        lambda p: p + rng.choice(["/", "/.", "/..", "?x=1", "?/../healthz", "/%2e"]),
    ]
    for _ in range(count):
        path = rng.choice(bases)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(rewrites)(path)
        yield path


def test_random_spellings_of_paid_requests_never_reach_the_upstream(proxy):
    checked = 0
    failures = []
    for path in mutations(seed=402, count=400):
        raw = path.encode()
        proxy.upstream.requests.clear()
        status, headers, _ = http1(proxy.listener, b"GET", raw, b"api.example.com")
        models = AREAS.paid("GET", raw, b"api.example.com", {})
        if not models:
            continue
        checked += 1
        told = outcome(status, headers)
        reached = proxy.upstream.requests
        if proxy.normalises:
            paid_reach = [r["path"] for r in reached
                          if AREAS.paid(r["method"], r["path"].encode("latin-1"), b"api.example.com", {})]
            ok = not paid_reach
        else:
            ok = not reached and told in (None, 400, 402, 404, 414)
        if not ok:
            failures.append(f"{path!r} (paid for {models}) -> {told}, upstream saw "
                            f"{[r['path'] for r in reached]}")
    assert checked >= 200, f"only {checked} paid spellings generated"
    assert not failures, "\n".join(failures)
