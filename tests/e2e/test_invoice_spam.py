"""Invoice-spam protection end to end: real Envoy with the shipped config, the real invoice
service, invoices counted on lnd alice. A client cannot choose the address it is limited by."""

import pytest

from client import request
from stack import Stack

BURST = 5


@pytest.fixture
def stack(net, tmp_path):
    # A per-client burst of 5 that does not refill during the test.
    with Stack(tmp_path, net, per_client_burst=BURST, per_client_rate=0.001) as paywall:
        yield paywall


def unpaid(stack, headers=(), source="127.0.0.1"):
    return request(stack.envoy.url, "/weather/today", headers, source=source).status


def test_rotating_x_forwarded_for_stays_within_the_per_client_limit(stack):
    before = stack.net.alice.invoice_count()
    statuses = [unpaid(stack, [("X-Forwarded-For", f"198.51.{n}.{n}"), ("X-Real-IP", f"203.0.113.{n}"),
                               ("Forwarded", f"for=192.0.2.{n}")])
                for n in range(1, 41)]
    created = stack.net.alice.invoice_count() - before
    assert created <= BURST, f"{created} invoices for one client with a burst of {BURST}"
    assert statuses.count(402) == created and statuses.count(429) == 40 - created
    assert stack.upstream.requests == []


def test_many_source_addresses_in_one_slash_24_share_the_limit(stack):
    before = stack.net.alice.invoice_count()
    statuses = [unpaid(stack, source=f"127.0.0.{n}") for n in range(2, 42)]
    created = stack.net.alice.invoice_count() - before
    assert created <= BURST, f"{created} invoices for one /24 with a burst of {BURST}"
    assert statuses.count(429) == 40 - created
