"""The invoice service against real lnd on regtest (and, named as such, a stand-in for the faults
lnd cannot be made to produce). Tests that stop alice come last and start her again."""

import contextlib
import hashlib
import json
import re
import secrets
import signal
import threading
import time
import urllib.error

import pytest

from l402cli import decode, l402
from lnd_standin import CERT, LndStandIn
from procs import free_port
from stack import Invoicer, invoicer_config, set_value


@pytest.fixture(scope="module")
def master_key():
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def invoicer(net, master_key, tmp_path_factory):
    with Invoicer(tmp_path_factory.mktemp("invoicer"), invoicer_config(free_port(), net), master_key) as service:
        yield service


@pytest.fixture
def lnd_standin():
    """Starts STAND-INs for lnd: `lnd_standin(body=…, delay=…)`; all stopped after the test."""
    with contextlib.ExitStack() as running:
        yield lambda **answer: running.enter_context(LndStandIn(**answer))


@pytest.fixture
def started(tmp_path, lnd_standin):
    """Starts invoice services of a test's own: `started(config, name)`; all stopped after the test,
    before the lnd stand-ins they call."""
    with contextlib.ExitStack() as running:
        def start(config: str, name: str, key=None) -> Invoicer:
            return running.enter_context(Invoicer(tmp_path, config, key or secrets.token_hex(32), name=name))
        yield start


def test_challenge_creates_the_invoice_on_lnd_with_amount_and_memo(net, invoicer):
    status, _, answer = invoicer.challenge("weather", "GET", "/weather/today")
    assert status == 200, answer
    assert answer["amount_msat"] == 10_000
    on_lnd = net.alice.invoice(answer["payment_hash"])
    assert on_lnd["value_msat"] == "10000"
    assert on_lnd["memo"] == "Weather API access"
    assert on_lnd["state"] == "OPEN"
    assert on_lnd["payment_request"] == answer["invoice"]
    decoded = net.alice.cli("decodepayreq", answer["invoice"], check=True)
    assert decoded["payment_hash"] == answer["payment_hash"]
    assert decoded["num_msat"] == "10000"
    expiry = int(on_lnd["creation_date"]) + int(on_lnd["expiry"])
    assert abs(expiry - answer["expires_at"]) <= 2


def test_paid_token_verifies_with_the_l402_command(net, invoicer, master_key):
    _, _, answer = invoicer.challenge("weather", "GET", "/weather/today")
    preimage = net.bob.pay(answer["invoice"])
    assert hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == answer["payment_hash"]
    assert net.alice.invoice(answer["payment_hash"])["state"] == "SETTLED"
    ok = l402("verify", "--master-key", f"1:{master_key}", "--service", "weather", "--preimage", preimage,
              answer["macaroon"], check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = l402("verify", "--master-key", f"1:{master_key}", "--service", "news", "--preimage", preimage,
                 answer["macaroon"], check=False)
    assert wrong.returncode == 1
    decoded = decode(answer["macaroon"])
    assert decoded["l402"]["token_id"] == answer["token_id"]
    assert decoded["caveats"] == ["services=weather:0", "weather_capabilities=",
                                  f"weather_valid_until={answer['valid_until']}"]


def test_prices_follow_service_and_path(net, invoicer):
    cases = [("weather", "/premium/report", 100_000), ("news", "/news/today", 2_500), ("weather", "/weather/x", 10_000)]
    for service, path, msat in cases:
        status, _, answer = invoicer.challenge(service, "GET", path)
        assert status == 200, answer
        assert answer["amount_msat"] == msat
        assert net.alice.invoice(answer["payment_hash"])["value_msat"] == str(msat)


def test_bad_requests_are_json_errors_and_create_nothing(net, invoicer):
    before = len(net.alice.invoices())
    status, _, body = invoicer.challenge("no-such-service")
    assert status == 404 and "no-such-service" in body["error"]
    status, _, body = invoicer.call("POST", "/v1/challenges", b"{not json")
    assert status == 400 and "error" in body
    status, _, body = invoicer.call("POST", "/v1/challenges", b"{" + b" " * 20_000 + b"}")
    assert status == 400 and "error" in body
    status, _, body = invoicer.call("GET", "/v2/whatever")
    assert status == 404 and "error" in body
    assert len(net.alice.invoices()) == before


def test_rate_limit_is_429_before_any_invoice(net, started):
    config = set_value(invoicer_config(free_port(), net), "per_client", "{ burst = 2, per_second = 0.01 }")
    limited = started(config, "limited")
    before = len(net.alice.invoices())
    assert limited.challenge(client_ip="198.51.100.7:1")[0] == 200
    assert limited.challenge(client_ip="198.51.100.99:2")[0] == 200
    status, headers, body = limited.challenge(client_ip="198.51.100.200:3")
    assert status == 429, body
    assert int(headers["Retry-After"]) >= 1
    assert len(net.alice.invoices()) == before + 2
    assert limited.challenge(client_ip="203.0.113.1:4")[0] == 200, "another /24 has its own bucket"
    metrics = limited.get("/metrics")[1]
    assert 'l402_rate_limited_total{scope="client"} 1' in metrics


def test_metrics_count_challenges_amounts_and_lnd_latency(invoicer):
    invoicer.challenge("news", "GET", "/news/a")
    status, text = invoicer.get("/metrics")
    assert status == 200
    assert 'l402_challenges_issued_total{service="news"}' in text
    assert 'l402_invoice_amount_msat_total{service="news"}' in text
    assert 'l402_lnd_request_duration_seconds_count{operation="add_invoice"}' in text
    assert 'l402_challenge_responses_total{status="200"}' in text


def test_readyz_reports_lnd_ready(invoicer):
    status, body = invoicer.get("/readyz")
    assert status == 200, body
    assert body == {"status": "ready", "lnd_state": "SERVER_ACTIVE"}


def test_a_certificate_other_than_the_pinned_one_is_refused(net, started):
    # Real fault, real parts: alice answers, but the service pins bob's certificate.
    config = set_value(invoicer_config(free_port(), net), "tls_cert_path", json.dumps(str(net.bob.tls_cert)))
    pinned_wrong = started(config, "wrong-cert")
    before = len(net.alice.invoices())
    status, _, body = pinned_wrong.challenge()
    assert status == 503
    assert body["error"] == "lnd TLS failed: the certificate lnd presented is not the pinned tls.cert"
    assert pinned_wrong.get("/readyz")[0] == 503
    assert len(net.alice.invoices()) == before


def test_a_macaroon_lnd_does_not_accept_is_503_without_leaking_it(net, started):
    # Bob's admin macaroon, presented to alice: lnd itself refuses it.
    config = set_value(invoicer_config(free_port(), net), "macaroon_path", json.dumps(str(net.bob.admin_macaroon)))
    foreign = started(config, "foreign-macaroon")
    status, _, body = foreign.challenge()
    assert status == 503
    assert body["error"].startswith("lnd refused the macaroon"), body
    macaroon_hex = net.bob.admin_macaroon.read_bytes().hex()
    assert macaroon_hex not in json.dumps(body)
    assert macaroon_hex not in foreign.log.read_text()
    assert 'l402_lnd_errors_total{kind="auth"} 1' in foreign.get("/metrics")[1]


def standin_config(net, standin: LndStandIn, request_timeout_ms=800) -> str:
    config = invoicer_config(free_port(), net)
    config = set_value(config, "rest_url", json.dumps(standin.url))
    config = set_value(config, "tls_cert_path", json.dumps(str(CERT)))
    return set_value(config, "request_timeout_ms", str(request_timeout_ms))


def test_garbage_from_lnd_is_503_naming_the_cause(net, lnd_standin, started):
    standin = lnd_standin(body=b"<html>surprise</html>")
    service = started(standin_config(net, standin), "garbage")
    status, _, body = service.challenge()
    assert status == 503
    assert body["error"].startswith("lnd answered something unusable"), body
    standin.body = json.dumps({"r_hash": "AAAA", "payment_request": "lnbcrt1"}).encode()
    status, _, body = service.challenge()
    assert status == 503 and "r_hash" in body["error"], body


def test_slow_lnd_is_503_after_the_request_timeout(net, lnd_standin, started):
    standin = lnd_standin(delay=3)
    service = started(standin_config(net, standin), "slow")
    began = time.time()
    status, _, body = service.challenge()
    took = time.time() - began
    assert status == 503
    assert body["error"] == "lnd did not answer within 800 ms"
    assert took < 2, f"took {took:.1f} s"
    assert standin.hits == 1, "a timeout is not retried: lnd may have created the invoice"


def test_sigterm_lets_the_request_in_flight_finish(net, lnd_standin, started):
    standin = lnd_standin(delay=1.5)
    service = started(standin_config(net, standin, request_timeout_ms=5000), "graceful")
    answers = []
    worker = threading.Thread(target=lambda: answers.append(service.challenge()))
    worker.start()
    time.sleep(0.5)
    assert standin.hits == 1, "the request is in flight"
    service.process.signal(signal.SIGTERM)
    worker.join(10)
    assert answers and answers[0][0] == 503, "the in-flight request got its (lnd-garbage) answer"
    service.process.popen.wait(10)
    assert service.process.popen.returncode == 0
    assert "shutting down" in service.log.read_text()


def test_logs_never_carry_secrets(net, invoicer, master_key):
    invoicer.challenge()
    log = invoicer.log.read_text()
    assert "challenge issued" in log
    assert master_key not in log
    assert net.invoice_macaroon.read_bytes().hex() not in log


def test_query_strings_never_reach_the_log(invoicer):
    status, _, _ = invoicer.challenge(path="/weather/today?access_token=s3cret-query-value")
    assert status == 200
    log = re.sub(r"\x1b\[[0-9;]*m", "", invoicer.log.read_text())
    assert "path=/weather/today" in log
    assert "s3cret-query-value" not in log


def test_ready_and_issuing_while_the_chain_backend_hangs(net, invoicer):
    """Readiness means "can issue an invoice now". With btcd frozen lnd still creates invoices,
    so /readyz stays 200 and answers at once; lnd's node-info call, which readiness used to make,
    hangs meanwhile. (btcd is paused, not stopped: on regtest it starts from an empty chain.)"""
    net.btcd.process.signal(signal.SIGSTOP)
    try:
        # The node-info call hangs (a timeout, not a refusal: lnd itself is up).
        with pytest.raises((TimeoutError, urllib.error.URLError)) as hung:
            net.alice.rest("GET", "/v1/getinfo", timeout=2)
        assert "timed out" in str(hung.value)
        started_at = time.time()
        status, body = invoicer.get("/readyz")
        took = time.time() - started_at
        assert status == 200, body
        assert took < 1, f"/readyz took {took:.1f} s"
        status, _, answer = invoicer.challenge()
        assert status == 200, answer
    finally:
        net.btcd.process.signal(signal.SIGCONT)


def test_lnd_down_is_503_and_recovers_without_restarting_the_service(net, invoicer):
    net.alice.stop()
    try:
        status, _, body = invoicer.challenge()
        assert status == 503
        assert body["error"].startswith("lnd unreachable"), body
        assert invoicer.get("/readyz")[0] == 503
        assert invoicer.get("/healthz")[0] == 200
    finally:
        net.restart_alice()
    status, _, answer = invoicer.challenge()
    assert status == 200, answer
    assert invoicer.get("/readyz")[0] == 200
    assert net.bob.pay(answer["invoice"])
