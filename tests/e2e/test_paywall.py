"""The paywall end to end: real Envoy loading the real .wasm, the real invoice service, lnd alice
creating the invoices and lnd bob paying them over a real regtest channel, a real upstream.
The test that stops alice comes last and starts her again."""

import json
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from envoy_proc import counter_prefix, use_build
from client import authorization, challenge, payment_hash_of, request
from l402cli import decode, mint_token
from stack import Stack


@pytest.fixture(scope="module")
def stack(net, tmp_path_factory, filter_build):
    use_build(filter_build)
    with Stack(tmp_path_factory.mktemp("stack"), net) as paywall:
        yield paywall


@pytest.fixture(autouse=True)
def clear(stack):
    stack.upstream.requests.clear()


def buy(stack, path="/weather/today"):
    """Request, read the 402 as lnget does, pay with bob; returns (macaroon, preimage)."""
    first = request(stack.envoy.url, path)
    assert first.status == 402, first.body
    macaroon, invoice = challenge(first)
    preimage = stack.net.bob.pay(invoice)
    return macaroon, preimage


def test_pay_then_retry_gets_the_upstream(stack):
    first = request(stack.envoy.url, "/weather/today")
    assert first.status == 402
    assert first.header_values("www-authenticate")[0].startswith('LSAT macaroon="')
    assert first.header_values("www-authenticate")[1].startswith('L402 macaroon="')
    macaroon, invoice = challenge(first)
    assert stack.upstream.requests == [], "nothing unpaid reached the API"
    on_lnd = stack.net.alice.invoice(payment_hash_of(macaroon))
    assert on_lnd["payment_request"] == invoice and on_lnd["state"] == "OPEN"

    preimage = stack.net.bob.pay(invoice)
    paid = request(stack.envoy.url, "/weather/today", authorization(macaroon, preimage))
    assert paid.status == 200, paid.body
    token_id = decode(macaroon)["l402"]["token_id"]
    assert paid.json()["paid_with_token"] == token_id
    seen = stack.upstream.requests[-1]["headers"]
    assert "authorization" not in seen, "the credential is not passed on to the API"
    assert stack.net.alice.invoice(payment_hash_of(macaroon))["state"] == "SETTLED"


def test_a_token_is_reused_without_a_new_invoice(stack):
    macaroon, preimage = buy(stack)
    before = len(stack.net.alice.invoices())
    for path in ["/weather/today", "/weather/tomorrow?units=metric", "/weather/today"]:
        assert request(stack.envoy.url, path, authorization(macaroon, preimage)).status == 200
    assert len(stack.net.alice.invoices()) == before


def test_lsat_scheme_and_aperture_client_credential_are_accepted(stack, aperture_peer):
    # What Aperture's Go client does: match its pattern over the WWW-Authenticate values, decode the
    # invoice with zpay32, pay, then send the macaroon with a preimage caveat as gRPC metadata.
    first = request(stack.envoy.url, "/weather/aperture")
    values = first.header_values("www-authenticate")
    parsed = json.loads(subprocess.run([str(aperture_peer), "challenge", *values], check=True,
                                       capture_output=True, text=True).stdout)
    assert parsed["amount_msat"] == 10_000
    assert parsed["payment_hash"] == payment_hash_of(parsed["macaroon"])
    preimage = stack.net.bob.pay(parsed["invoice"])
    header = subprocess.run([str(aperture_peer), "credential", parsed["macaroon"], preimage], check=True,
                            capture_output=True, text=True).stdout.strip()
    name, value = header.split(": ", 1)
    assert name == "macaroon"
    assert request(stack.envoy.url, "/weather/aperture", {name: value}).status == 200
    lsat = authorization(parsed["macaroon"], preimage, scheme="LSAT")
    assert request(stack.envoy.url, "/weather/aperture", lsat).status == 200


def test_a_token_for_one_service_is_402_on_another(stack):
    macaroon, preimage = buy(stack)
    other = request(stack.envoy.url, "/news/today", authorization(macaroon, preimage))
    assert other.status == 402
    fresh, _ = challenge(other)
    assert fresh != macaroon, "a fresh challenge for the other service"
    assert "news" in decode(fresh)["caveats"][0]
    assert stack.upstream.requests == []


def test_premium_path_needs_the_premium_token(stack):
    weather, weather_preimage = buy(stack, "/weather/today")
    assert request(stack.envoy.url, "/premium/report", authorization(weather, weather_preimage)).status == 402
    premium, premium_preimage = buy(stack, "/premium/report")
    assert request(stack.envoy.url, "/premium/report", authorization(premium, premium_preimage)).status == 200


def test_a_token_past_valid_until_is_402(stack):
    macaroon, preimage = buy(stack, "/flash/now")
    assert request(stack.envoy.url, "/flash/now", authorization(macaroon, preimage)).status == 200
    caveats = decode(macaroon)["caveats"]
    valid_until = int(next(c for c in caveats if c.startswith("flash_valid_until=")).split("=")[1])
    time.sleep(max(0.0, valid_until - time.time()) + 1.1)
    late = request(stack.envoy.url, "/flash/now", authorization(macaroon, preimage))
    assert late.status == 402
    assert challenge(late)[0] != macaroon


def test_a_token_minted_with_another_master_secret_is_402(stack):
    forged, preimage, _ = mint_token("weather", secrets.token_hex(32))
    assert request(stack.envoy.url, "/weather/today", authorization(forged, preimage)).status == 402
    assert stack.upstream.requests == []


def test_a_wrong_preimage_or_garbage_token_is_402_with_a_fresh_challenge(stack):
    macaroon, _ = buy(stack)
    for headers in [authorization(macaroon, "00" * 32), {"Authorization": "L402 garbage:garbage"}]:
        answer = request(stack.envoy.url, "/weather/today", headers)
        assert answer.status == 402
        challenge(answer)
    assert stack.upstream.requests == []


def test_fifty_concurrent_requests_get_fifty_distinct_invoices(stack):
    before = {i["payment_request"] for i in stack.net.alice.invoices()}
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: request(stack.envoy.url, "/weather/rush"), range(50)))
    assert [a.status for a in answers] == [402] * 50
    invoices = {challenge(a)[1] for a in answers}
    assert len(invoices) == 50
    created = {i["payment_request"] for i in stack.net.alice.invoices()} - before
    assert invoices <= created
    assert stack.upstream.requests == []


def stat(stats: str, name: str) -> int:
    return int(next(line.split(": ")[1] for line in stats.splitlines() if line.startswith(f"{counter_prefix()}{name}:")))


def test_envoy_and_invoice_service_count_what_happened(stack):
    before = stack.envoy.stats()
    macaroon, preimage = buy(stack)
    request(stack.envoy.url, "/weather/today", authorization(macaroon, "00" * 32))
    request(stack.envoy.url, "/weather/today", authorization(macaroon, preimage))
    after = stack.envoy.stats()
    assert stat(after, "l402_requests_challenged") == stat(before, "l402_requests_challenged") + 2
    assert stat(after, "l402_requests_allowed") == stat(before, "l402_requests_allowed") + 1
    assert stat(after, "l402_rejected_preimage_mismatch") == stat(before, "l402_rejected_preimage_mismatch") + 1
    metrics = stack.invoicer.get("/metrics")[1]
    assert 'l402_challenges_issued_total{service="weather"}' in metrics


def test_alice_down_is_503_and_the_paid_flow_returns_without_restarts(stack):
    envoy_pid, invoicer_pid = stack.envoy.process.pid, stack.invoicer.process.pid
    stack.net.alice.stop()
    try:
        down = request(stack.envoy.url, "/weather/today")
        assert down.status == 503, down.body
        assert down.header("retry-after")
        assert stack.upstream.requests == [], "fail closed: nothing reached the API"
    finally:
        stack.net.restart_alice()
    macaroon, preimage = buy(stack)
    assert request(stack.envoy.url, "/weather/today", authorization(macaroon, preimage)).status == 200
    assert (stack.envoy.process.pid, stack.invoicer.process.pid) == (envoy_pid, invoicer_pid)
    assert stack.envoy.process.alive() and stack.invoicer.process.alive()
