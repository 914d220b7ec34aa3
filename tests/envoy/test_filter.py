"""The filter in real Envoy: the built .wasm, a real upstream, real HTTP."""

import base64
import json
import subprocess
import time

import pytest
import yaml

from client import read_challenge, request
from envoy_proc import SHIPPED, cluster, counter_prefix, envoy_command, render, to_native, validate
from harness import MASTER_KEY, REVOKED_TOKEN_ID, Envoy, envoy_env, mint
from l402cli import decode
from procs import ROOT, free_port


def bearer(macaroon, preimage):
    return ("Authorization", f"L402 {macaroon}:{preimage}")


def assert_challenge(resp):
    assert resp.status == 402, resp.body
    values = resp.header_values("www-authenticate")
    assert len(values) == 2 and values[0].startswith("LSAT ") and values[1].startswith("L402 ")
    reading = read_challenge(values[0])
    assert reading and reading.scheme == "LSAT"
    assert reading.invoice.startswith("lnbcrt")
    assert resp.header("cache-control") == "no-store"
    assert "WWW-Authenticate" in resp.header("access-control-expose-headers")
    payload = json.loads(resp.body)
    assert payload["error"] == "payment required" and payload["invoice"] == reading.invoice
    return reading.macaroon


def test_no_token_gets_402_that_lnget_parses(stack):
    resp = request(stack.url, "/weather/today")
    macaroon = assert_challenge(resp)
    decoded = decode(macaroon)
    assert decoded["caveats"][0] == "services=weather:0"
    assert stack.upstream.requests == []
    assert stack.invoicer.requests[0]["service"] == "weather"
    assert stack.invoicer.requests[0]["reason"] == "missing"
    assert stack.invoicer.requests[0]["client_ip"] == "127.0.0.1"


def test_valid_token_reaches_upstream_with_its_id_and_never_the_spoofed_one(stack):
    macaroon, preimage, token_id = mint("weather")
    resp = request(stack.url, "/weather/today", [bearer(macaroon, preimage), ("x-l402-token-id", "spoofed"),
                                                 ("x-l402-service", "spoofed")])
    assert resp.status == 200, resp.body
    seen = stack.upstream.requests[-1]["headers"]
    assert seen["x-l402-token-id"] == token_id
    assert seen["x-l402-service"] == "weather"
    assert "authorization" not in seen
    assert stack.invoicer.requests == [], "no callout for a valid token"


def test_spoofed_identity_is_removed_on_free_routes_too(stack):
    resp = request(stack.url, "/healthz", [("x-l402-token-id", "spoofed")])
    assert resp.status == 200
    assert "x-l402-token-id" not in stack.upstream.requests[-1]["headers"]


@pytest.mark.parametrize("case", ["expired", "wrong_service", "tampered", "revoked", "wrong_preimage",
                                  "other_master_secret", "garbage"])
def test_bad_tokens_get_a_fresh_challenge(stack, case):
    now = int(time.time())
    if case == "expired":
        macaroon, preimage, _ = mint("weather", [f"weather_valid_until={now - 1}"])
    elif case == "wrong_service":
        macaroon, preimage, _ = mint("news")
    elif case == "tampered":
        macaroon, preimage, _ = mint("weather")
        macaroon = macaroon[:-6] + ("AAAAA=" if not macaroon.endswith("AAAAA=") else "BBBBB=")
    elif case == "revoked":
        macaroon, preimage, _ = mint("weather", token_id=REVOKED_TOKEN_ID)
    elif case == "wrong_preimage":
        macaroon, _, _ = mint("weather")
        preimage = "00" * 32
    elif case == "other_master_secret":
        macaroon, preimage, _ = mint("weather", key="77" * 32)
    else:
        macaroon, preimage = "not-a-macaroon", "zz"
    resp = request(stack.url, "/weather/today", [bearer(macaroon, preimage)])
    assert_challenge(resp)
    assert stack.upstream.requests == []


def test_grpc_request_gets_grpc_status_13_with_the_challenge(stack):
    resp = request(stack.url, "/weather/svc.Weather/Get", [("content-type", "application/grpc")], method="POST")
    assert resp.status == 200
    assert resp.header("grpc-status") == "13"
    assert resp.header("grpc-message") == "payment required"
    values = resp.header_values("www-authenticate")
    assert values and values[0].startswith("LSAT ") and read_challenge(values[0])
    assert stack.upstream.requests == []


def test_non_utf8_header_value_is_served(stack):
    macaroon, preimage, _ = mint("weather")
    resp = request(stack.url, "/weather/today", [bearer(macaroon, preimage), ("x-odd", b"\xff\xfe\x80")])
    assert resp.status == 200
    resp = request(stack.url, "/weather/today", [("authorization", b"L402 \xff\xfe:\x80")])
    assert resp.status == 402


def test_invoice_service_stopped_is_503_and_upstream_sees_nothing(stack):
    stack.stop_invoicer()
    try:
        resp = request(stack.url, "/weather/today")
        assert resp.status == 503, resp.body
        assert resp.header("retry-after")
        assert json.loads(resp.body)["error"]
        assert stack.upstream.requests == []
    finally:
        stack.start_invoicer()
    resp = request(stack.url, "/weather/today")
    assert resp.status == 402, "recovers without restarting Envoy"


def test_invoice_service_slower_than_timeout_is_503_within_the_timeout(stack):
    stack.invoicer.mode = "slow"
    started = time.time()
    resp = request(stack.url, "/weather/today")
    elapsed = time.time() - started
    assert resp.status == 503
    assert elapsed < 1.0 + 1.0, f"took {elapsed:.2f}s with a 1s callout timeout"
    assert stack.upstream.requests == []


@pytest.mark.parametrize("mode,status", [("garbage", 503), ("500", 503), ("429", 429)])
def test_invoice_service_faults(stack, mode, status):
    stack.invoicer.mode = mode
    resp = request(stack.url, "/weather/today")
    assert resp.status == status
    assert resp.header("retry-after") == ("17" if mode == "429" else "5")
    assert stack.upstream.requests == []


def test_metrics_are_visible_in_stats_and_prometheus(stack):
    request(stack.url, "/weather/today")
    stats = stack.stats()
    counters = dict(line.split(": ", 1) for line in stats.splitlines() if "l402_" in line)
    prefix = counter_prefix()
    assert int(counters[f"{prefix}l402_requests_challenged"]) >= 1
    assert f"{prefix}l402_rejected_expired" in counters
    assert "l402_requests_allowed" in stack.stats("/prometheus")


@pytest.mark.parametrize("config", sorted((ROOT / "envoy").glob("*.yaml")), ids=lambda p: p.name)
def test_every_envoy_config_validates(config, tmp_path):
    result = validate(render(config), tmp_path / "validate.yaml", envoy_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_the_native_config_is_the_shipped_one_with_the_module():
    shipped = yaml.safe_load(SHIPPED.read_text())
    native = yaml.safe_load((ROOT / "envoy" / "envoy-native.yaml").read_text())
    assert to_native(shipped) == native


def typo(plugin):
    plugin["routes"][1]["prce"] = 10


def test_bad_config_is_refused_by_validate_and_at_startup(tmp_path):
    text = render(SHIPPED, {9901: free_port(), 10000: free_port()}, plugin_edit=typo)
    result = validate(text, tmp_path / "validate.yaml", envoy_env())
    assert result.returncode != 0
    assert "routes[1].prce: unknown field `prce`" in result.stdout + result.stderr

    path = tmp_path / "runtime.yaml"
    path.write_text(text)
    proc = subprocess.run(envoy_command(path), capture_output=True, text=True, env=envoy_env(), timeout=60)
    assert proc.returncode != 0
    assert "routes[1].prce: unknown field `prce`" in proc.stdout + proc.stderr


def test_missing_master_secret_is_refused_naming_the_field(tmp_path):
    text = render(SHIPPED, {9901: free_port(), 10000: free_port()})
    env = {k: v for k, v in envoy_env().items() if k != "L402_MASTER_KEY_1"}
    proc = validate(text, tmp_path / "nokey.yaml", env, timeout=60)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "keys[0].env" in output and MASTER_KEY not in output


def unknown_cluster(plugin):
    plugin["invoice_service"]["cluster"] = "no_such_cluster"


def test_unknown_invoice_cluster_is_503_and_never_forwards(tmp_path):
    with Envoy(tmp_path, plugin_edit=unknown_cluster, first_read=False) as stack:
        resp = request(stack.url, "/weather/today")
        assert resp.status == 503, resp.body
        assert stack.upstream.requests == []
        assert "no_such_cluster" in stack.log.read_text(), "the log names the missing cluster"


def no_endpoints(config):
    cluster(config, "l402_invoicer")["load_assignment"]["endpoints"] = []


def read_revocations(plugin):
    plugin["revocations"] = {"sync_interval_ms": 100}


def test_a_callout_envoy_answers_at_once_is_a_503_not_a_hang(tmp_path):
    """With no replica at all, Envoy answers a callout before the call that starts it returns
    (no healthy upstream): the request still ends at once, and so do the timer's reads."""
    with Envoy(tmp_path, plugin_edit=read_revocations, config_edit=no_endpoints, first_read=False) as stack:
        mac, pre, _ = mint("weather")
        for headers in ([], [("authorization", f"L402 {mac}:{pre}")]):
            started = time.monotonic()
            resp = request(stack.url, "/weather/today", headers, timeout=10)
            assert resp.status == 503, resp.body
            assert time.monotonic() - started < 2
        assert stack.upstream.requests == []
        time.sleep(0.5)
        stats = stack.stats()
        errors = sum(int(line.partition(": ")[2]) for line in stats.splitlines()
                     if line.partition(": ")[0].endswith("l402_revocations_sync_errors"))
        assert errors >= 2, "the timer keeps trying, and each failed read is counted"


def test_callout_carries_the_canonical_path_without_its_query(stack):
    resp = request(stack.url, "//weather/./today?access_token=s3cret")
    assert resp.status == 402
    callout = stack.invoicer.requests[-1]
    assert callout["path"] == "/weather/today"
    assert "s3cret" not in json.dumps(callout)
    assert "s3cret" not in stack.log.read_text()


def test_a_client_cannot_choose_its_address_with_forwarding_headers(stack):
    resp = request(stack.url, "/weather/today", [("X-Forwarded-For", "198.51.100.77"),
                                                  ("X-Real-IP", "198.51.100.78"),
                                                  ("Forwarded", "for=198.51.100.79")])
    assert resp.status == 402
    assert stack.invoicer.requests[-1]["client_ip"] == "127.0.0.1"


def test_an_over_long_path_is_414_not_a_payment_outage(stack):
    resp = request(stack.url, "/weather/" + "a" * 9000)
    assert resp.status == 414, resp.body
    assert stack.invoicer.requests == [] and stack.upstream.requests == []
    resp = request(stack.url, "/weather/today?q=" + "a" * 20_000)
    assert resp.status == 402, "a long query string is not the path"


def test_an_invalid_host_is_400(stack):
    resp = request(stack.url, "/weather/today", [("Host", "api..example.com")])
    assert resp.status == 400, resp.body
    assert stack.upstream.requests == []


def test_every_l402_credential_is_stripped_before_the_upstream(stack):
    macaroon, preimage, _ = mint("weather")
    # A second credential in each of the other headers: not the one verified, stripped all the same.
    other = base64.b64decode(mint("news")[0]).hex()
    resp = request(stack.url, "/weather/today", [
        ("Authorization", f"Bearer for-the-api, L402 {macaroon}:{preimage}"),
        ("Macaroon", other),
        ("Grpc-Metadata-Macaroon", other),
    ])
    assert resp.status == 200, resp.body
    seen = stack.upstream.requests[-1]["headers"]
    assert seen["authorization"] == "Bearer for-the-api"
    assert "macaroon" not in seen and "grpc-metadata-macaroon" not in seen


def test_a_path_no_route_names_is_404_with_the_shipped_config(stack):
    resp = request(stack.url, "/admin/secrets")
    assert resp.status == 404, resp.body
    assert json.loads(resp.body) == {"error": "not found"}
    assert stack.upstream.requests == [] and stack.invoicer.requests == []
