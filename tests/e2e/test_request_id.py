"""One unpaid request followed from Envoy to lnd by its request id: Envoy makes the id and logs it
(the shipped JSON access log), the filter's callout carries it, the invoice service's JSON log
lines for the challenge carry it, and their payment hash is the invoice lnd holds. Then the paid
retry: logged by Envoy under its own id, with the token id, and nothing reaches the service."""

import json
import re
import time
import uuid

import pytest

from client import authorization, challenge, payment_hash_of, request
from envoy_proc import use_build
from stack import Stack


@pytest.fixture(scope="module")
def stack(net, tmp_path_factory, filter_build):
    use_build(filter_build)
    with Stack(tmp_path_factory.mktemp("stack"), net, invoicer_env={"L402_LOG_FORMAT": "json"}) as paywall:
        yield paywall


def json_lines(path, where, seconds=5.0):
    """The JSON lines of log `path` for which `where` holds, waiting for at least one (Envoy's
    access log is flushed after the response)."""
    deadline = time.monotonic() + seconds
    while True:
        found = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line[line.index("{"):]) if "{" in line else None
            except ValueError:
                continue
            if isinstance(entry, dict) and where(entry):
                found.append(entry)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_an_unpaid_request_is_followed_from_envoy_to_lnd_by_one_id(stack, net):
    # A client's own id is replaced at the edge: it cannot name another request in the logs.
    chosen = "chosen-by-the-client"
    resp = request(stack.envoy.url, "/weather/today?api_key=s3cret", headers=[("x-request-id", chosen)])
    assert resp.status == 402, resp.body
    rid = resp.header("x-request-id")
    assert rid and rid != chosen, f"the answer names Envoy's id: {resp.headers}"
    uuid.UUID(rid)

    (access,) = json_lines(stack.envoy.log, lambda e: e.get("request_id") == rid)
    assert (access["status"], access["method"], access["path"]) == (402, "GET", "/weather/today")
    assert access["details"] == "l402_challenge", "the log says why the filter answered"
    assert "s3cret" not in stack.envoy.log.read_text(), "query strings stay out of the access log"

    issued = json_lines(stack.invoicer.log, lambda e: e.get("span", {}).get("request_id") == rid)
    assert [e["fields"]["message"] for e in issued] == ["challenge issued"], issued
    (line,) = issued
    macaroon, invoice = challenge(resp)
    assert line["fields"]["payment_hash"] == payment_hash_of(macaroon)
    assert line["fields"]["path"] == "/weather/today" and line["fields"]["service"] == "weather"
    assert net.alice.invoice(line["fields"]["payment_hash"])["payment_request"] == invoice
    assert not json_lines(stack.invoicer.log, lambda e: chosen in json.dumps(e), seconds=0)

    preimage = net.bob.pay(invoice)
    paid = request(stack.envoy.url, "/weather/today", headers=authorization(macaroon, preimage).items())
    assert paid.status == 200, paid.body
    paid_id = paid.header("x-request-id")
    assert paid_id and paid_id != rid
    (access,) = json_lines(stack.envoy.log, lambda e: e.get("request_id") == paid_id)
    assert access["status"] == 200 and re.fullmatch(r"[0-9a-f]{64}", access["l402_token_id"])
    assert access["details"] == "via_upstream"
    assert not json_lines(stack.invoicer.log, lambda e: e.get("span", {}).get("request_id") == paid_id,
                          seconds=0), "a paid request makes no callout"
    assert preimage not in stack.envoy.log.read_text() and macaroon not in stack.envoy.log.read_text()


def test_a_refused_challenge_is_logged_under_the_callers_id(stack):
    """A refusal (here an unknown service, asked directly as the filter would ask) is a log line in
    the caller's span, and the answer names the id: what an operator greps for."""
    rid = str(uuid.uuid4())
    resp = request(stack.invoicer.url, "/v1/challenges", method="POST", body=b'{"service": "nope"}',
                   headers=[("x-request-id", rid), ("content-type", "application/json")])
    assert (resp.status, resp.header("x-request-id")) == (404, rid)
    (line,) = json_lines(stack.invoicer.log, lambda e: e.get("span", {}).get("request_id") == rid)
    assert line["fields"]["message"] == "challenge refused" and line["level"] == "INFO"


def test_an_outage_is_logged_as_the_filters_503_not_a_challenge(stack):
    """With the invoice service down the access log's details tell the filter's fail-closed 503
    from a challenge and from an upstream's own 503. Last in this module: it stops the service."""
    stack.invoicer.stop()
    try:
        resp = request(stack.envoy.url, "/weather/today")
        assert resp.status == 503, resp.body
        rid = resp.header("x-request-id")
        (access,) = json_lines(stack.envoy.log, lambda e: e.get("request_id") == rid)
        assert (access["status"], access["details"]) == (503, "l402_unavailable"), access
    finally:
        stack.invoicer.start()
