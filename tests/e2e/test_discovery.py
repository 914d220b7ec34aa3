"""The discovery manifest (`/.well-known/l402.json`, lightninglabs/L402 discovery-spec.md) served by
real Envoy with the filter from its routes, priced by the real invoice service: checked against
the spec's members, and every fixed price against what the 402 for that path actually charges."""

import json

import pytest

from client import request
from envoy_proc import use_build
from stack import Stack

PRICING_MODELS = {"fixed", "formula", "dynamic"}
CAVEAT_TYPES = {"integer", "timestamp", "string", "enum", "service_list"}


@pytest.fixture(scope="module")
def stack(net, tmp_path_factory, filter_build):
    use_build(filter_build)
    with Stack(tmp_path_factory.mktemp("stack"), net) as paywall:
        yield paywall


def fetch(stack, method="GET"):
    resp = request(stack.envoy.url, "/.well-known/l402.json", method=method)
    assert resp.status == 200, resp.body
    return resp


def validate(doc):
    """The spec's section 5: the required members, their types, and the rules between them."""
    assert doc["version"] == "1.0"
    assert isinstance(doc["provider"]["name"], str) and doc["provider"]["name"]
    assert "msat" in doc["currencies"]
    assert doc.get("macaroon_versions", [0]) == [0]
    assert set(doc.get("payment_methods", ["bolt11"])) <= {"bolt11", "bolt12"}
    assert "quote_endpoint" not in doc, "only fixed prices, so no quote endpoint is advertised"
    assert isinstance(doc["services"], list) and doc["services"]
    for service in doc["services"]:
        assert isinstance(service["name"], str)
        capabilities = service.get("capabilities")
        for tier in service.get("tiers", []):
            assert isinstance(tier["tier"], int) and 0 <= tier["tier"] <= 255
        assert service["resources"], f"{service['name']} has no resources"
        for resource in service["resources"]:
            assert resource.get("method", "GET") in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
            pricing = resource["pricing"]
            assert pricing["model"] in PRICING_MODELS
            if pricing["model"] == "fixed":
                assert isinstance(pricing["price_msat"], int) and pricing["price_msat"] >= 0
            if "capability" in resource and capabilities is not None:
                assert resource["capability"] in capabilities
    for condition, rule in doc.get("caveats", {}).items():
        assert rule["type"] in CAVEAT_TYPES, condition
        assert rule.get("attenuation", "subset") in {"subset", "decreasing", "earlier"}


def test_the_manifest_is_served_unpaid_with_the_spec_members(stack):
    resp = fetch(stack)
    assert resp.header("content-type") == "application/json"
    assert resp.header("access-control-allow-origin") == "*"
    assert "max-age" in resp.header("cache-control")
    doc = json.loads(resp.body)
    validate(doc)
    names = [s["name"] for s in doc["services"]]
    assert "weather" in names and "news" in names
    assert doc["caveats"]["services"]["type"] == "service_list"
    assert doc["caveats"]["weather_valid_until"]["attenuation"] == "earlier"
    assert stack.upstream.requests == [], "answered at the edge"


def test_every_fixed_price_is_what_the_challenge_charges(stack):
    doc = json.loads(fetch(stack).body)
    checked = 0
    for service in doc["services"]:
        for resource in service["resources"]:
            path = resource.get("path")
            if not path:
                continue
            concrete = path.replace("*", "today")
            resp = request(stack.envoy.url, concrete, method=resource.get("method", "GET"))
            assert resp.status == 402, (concrete, resp.status, resp.body)
            body = json.loads(resp.body)
            assert body["service"] == service["name"]
            assert body["amount_msat"] == resource["pricing"]["price_msat"], concrete
            checked += 1
    assert checked >= 3


def test_head_works_and_other_spellings_are_ordinary_requests(stack):
    assert fetch(stack, "HEAD").body in (b"", "")
    # Not the well-known path: routed like any other, so the shipped `unmatched: deny` says 404.
    assert request(stack.envoy.url, "/.well-known/l402.json.bak").status == 404
    assert request(stack.envoy.url, "/.well-known/l402.json", method="POST").status == 404
