"""The 2026 revision of the L402 spec in real Envoy: `Token:` credentials, and the optional third
challenge line and 401, off by default so that today's clients keep working."""

import base64
import json

import pytest

from client import read_challenge, request
from envoy_proc import use_build
from harness import Envoy, mint

PREIMAGE = "7a" * 32


def hex_token(service="weather"):
    """A `Token:` value: the macaroon in hex with the preimage as its caveat."""
    macaroon, _, _ = mint(service, [f"preimage={PREIMAGE}"], preimage=PREIMAGE)
    return base64.b64decode(macaroon).hex()


def tampered():
    macaroon, preimage, _ = mint("weather")
    raw = bytearray(base64.b64decode(macaroon))
    raw[-1] ^= 1
    return ("Authorization", f"L402 {base64.b64encode(bytes(raw)).decode()}:{preimage}")


@pytest.mark.parametrize("name", ["Token", "Grpc-Metadata-Token"])
def test_a_token_header_pays_and_is_removed_before_the_upstream(stack, name):
    resp = request(stack.url, "/weather/today", [(name, hex_token())])
    assert resp.status == 200, resp.body
    assert name.lower() not in stack.upstream.requests[-1]["headers"]
    assert stack.invoicer.requests == []


def test_a_token_header_that_is_not_hex_is_the_upstreams_own(stack):
    macaroon, preimage, _ = mint("weather")
    resp = request(stack.url, "/weather/today",
                   [("Authorization", f"L402 {macaroon}:{preimage}"), ("Token", "api-key.v1")])
    assert resp.status == 200, resp.body
    assert stack.upstream.requests[-1]["headers"]["token"] == "api-key.v1"
    resp = request(stack.url, "/weather/today", [("Token", "api-key.v1")])
    assert resp.status == 402 and stack.invoicer.requests[-1]["reason"] == "missing"


def test_a_token_credential_beside_the_upstreams_token_goes_and_the_upstreams_stays(stack):
    for lines in ([("Token", hex_token()), ("Token", "api-key.v1")],
                  [("Token", "api-key.v1"), ("Token", hex_token())]):
        resp = request(stack.url, "/weather/today", lines)
        assert resp.status == 200, resp.body
        forwarded = [v for k, v in stack.upstream.requests[-1]["lines"] if k == "token"]
        assert forwarded == ["api-key.v1"], forwarded


def test_by_default_an_invalid_credential_gets_402_and_only_the_two_lines(stack):
    resp = request(stack.url, "/weather/today", [tampered()])
    assert resp.status == 402, resp.body
    assert len(resp.header_values("www-authenticate")) == 2


def options_on(plugin):
    plugin["challenge"] = {"token_line": True, "invalid_credential_status": 401}


@pytest.fixture(scope="module")
def stack_2026(tmp_path_factory, filter_build):
    use_build(filter_build)
    with Envoy(tmp_path_factory.mktemp("envoy-2026"), plugin_edit=options_on) as envoy:
        yield envoy


def assert_three_lines_todays_parsers_still_read(resp):
    values = resp.header_values("www-authenticate")
    assert len(values) == 3, values
    first = read_challenge(values[0])
    assert first and first.scheme == "LSAT", "lnget reads the first line"
    assert read_challenge(values[1]).macaroon == first.macaroon
    assert values[2] == f'L402 version="0", token="{first.macaroon}", invoice="{first.invoice}"'
    return json.loads(resp.body)


def test_with_the_options_on_an_invalid_credential_gets_401_with_a_fresh_challenge(stack_2026):
    resp = request(stack_2026.url, "/weather/today", [tampered()])
    assert resp.status == 401, resp.body
    body = assert_three_lines_todays_parsers_still_read(resp)
    assert body["error"] == "invalid credential, payment required"
    assert stack_2026.invoicer.requests[-1]["reason"] == "bad_signature"


def test_with_the_options_on_no_credential_is_still_402(stack_2026):
    resp = request(stack_2026.url, "/weather/today")
    assert resp.status == 402, resp.body
    assert assert_three_lines_todays_parsers_still_read(resp)["error"] == "payment required"
    resp = request(stack_2026.url, "/weather/today", [("Token", hex_token())])
    assert resp.status == 200, "a valid token is unaffected"
