"""Counted tokens (`<service>_requests=N`) across two Envoys (two workers each) and two
invoice-service replicas on one real Redis, with the real regtest node behind the challenges.

Tokens are minted with the service's master key (as the service would) so a test can hold one
with any count; the paid flow with a real payment is `test_pay_per_request_on_regtest`."""

import http.client
import json
import re
import threading
import time
from urllib.parse import urlsplit

import pytest

from client import authorization, challenge, request
from l402cli import l402, mint_token
from envoy_proc import current_build
from quota_stack import QuotaStack


@pytest.fixture
def stack(tmp_path, net):
    with QuotaStack(tmp_path, net) as s:
        yield s


def counted_token(stack, n: int | None, *extra):
    caveats = [*extra] + ([f"weather_requests={n}"] if n is not None else [])
    macaroon, preimage, token_id = mint_token("weather", stack.master_key, caveats)
    return authorization(macaroon, preimage), token_id


class Client(threading.Thread):
    """One keep-alive connection to one Envoy, asking until a 402 (or `limit` answers)."""

    def __init__(self, url: str, headers: dict, limit: int | None = None, stop_on_402=True):
        super().__init__(daemon=True)
        self.url, self.headers, self.limit, self.stop_on_402 = url, headers, limit, stop_on_402
        self.statuses = []
        self.times = []
        self.challenges = []
        self.halt = threading.Event()

    def run(self):
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            while not self.halt.is_set() and (self.limit is None or len(self.statuses) < self.limit):
                try:
                    conn.request("GET", "/weather/today", headers=self.headers)
                    r = conn.getresponse()
                    r.read()
                except (http.client.HTTPException, ConnectionError):
                    # Envoy closed the keep-alive connection (its 503 after a replica died, say):
                    # a client opens another, as real clients do.
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                    continue
                self.statuses.append(r.status)
                self.times.append(time.monotonic())
                if r.status == 402:
                    self.challenges.append(r.getheader("www-authenticate"))
                    if self.stop_on_402:
                        return
                if r.status in (429, 503):
                    time.sleep(0.2)
        finally:
            conn.close()


def drive(stack, headers, clients=16, limit=None, stop_on_402=True, envoys=None):
    envoys = envoys or stack.envoys
    threads = [Client(envoys[i % len(envoys)].url, headers, limit, stop_on_402)
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a client never finished"
    return threads


def test_never_more_than_n_across_envoys_workers_and_replicas(stack):
    headers, token_id = counted_token(stack, 50)
    threads = drive(stack, headers)
    statuses = [s for t in threads for s in t.statuses]
    assert statuses.count(200) == 50, statuses
    assert stack.served(token_id) == 50
    assert set(statuses) <= {200, 402, 429}, statuses
    # Every client ends on a fresh challenge for the same route: buy more.
    for t in threads:
        assert t.statuses[-1] == 402 and 'macaroon="' in t.challenges[-1] and 'invoice="lnbcrt' in t.challenges[-1]
    assert stack.stats("l402_rejected_quota_exhausted") >= 16


def test_a_client_that_keeps_asking_gets_every_unit_back_from_idle_blocks(stack):
    headers, token_id = counted_token(stack, 50)
    # Everyone takes a little at the second Envoy, leaving units in its blocks, then stops. (A
    # dynamic module shares its blocks between its threads, so the units must be left in
    # another process for the last client to need them back.)
    first = drive(stack, headers, clients=16, limit=2, envoys=stack.envoys[1:])
    served_first = sum(t.statuses.count(200) for t in first)
    assert stack.served(token_id) == served_first
    assert served_first < 50
    started = time.monotonic()
    last = Client(stack.envoys[0].url, headers)
    last.run()
    assert stack.served(token_id) == 50, last.statuses
    assert last.statuses[-1] == 402
    assert stack.stats("l402_quota_returned_units") > 0
    assert time.monotonic() - started < 10


def test_attenuation_only_lowers_the_count_and_expiry_still_holds(stack):
    lowered, lowered_id = counted_token(stack, None, "weather_requests=10", "weather_requests=3")
    drive(stack, lowered, clients=4)
    assert stack.served(lowered_id) == 3
    raised, raised_id = counted_token(stack, None, "weather_requests=3", "weather_requests=100")
    drive(stack, raised, clients=4)
    assert stack.served(raised_id) == 3
    expired, expired_id = counted_token(stack, 5, "weather_valid_until=1000")
    r = request(stack.envoys[0].url, "/weather/today", expired)
    assert r.status == 402 and stack.served(expired_id) == 0


def test_pay_per_request_on_regtest(stack, net):
    envoy = stack.envoys[0].url
    first = request(envoy, "/single/x")
    assert first.status == 402
    macaroon, invoice = challenge(first)
    preimage = net.bob.pay(invoice)
    paid = authorization(macaroon, preimage)
    assert request(envoy, "/single/x", paid).status == 200
    again = request(envoy, "/single/x", paid)
    assert again.status == 402, "one request per payment"
    assert challenge(again)[1] != invoice, "a new invoice to buy the next one"
    assert request(stack.envoys[1].url, "/single/x", paid).status == 402, "not at the other Envoy either"


def test_store_down_means_503_for_counted_tokens_and_nothing_for_plain_ones(stack):
    plain, _ = counted_token(stack, None)
    counted, counted_id = counted_token(stack, 1000)
    assert request(stack.envoys[0].url, "/weather/today", counted).status == 200
    stack.redis.stop()
    # Every callout Envoy made in the meantime is the timers' (revocation reads, give-backs),
    # counted by the filter when answered: compare only when none is in flight.
    timers = ("l402_revocations_reads", "l402_revocations_sync_errors", "l402_quota_returns",
              "l402_quota_return_errors")

    def snapshot():
        return (stack.stats("cluster.l402_invoicer.upstream_rq_active"),
                stack.stats("cluster.l402_invoicer.upstream_rq_total") - sum(map(stack.stats, timers)))

    def callouts():
        deadline = time.monotonic() + 10
        while True:
            first, second = snapshot(), snapshot()
            if first == second and first[0] == 0:
                return first[1]
            assert time.monotonic() < deadline, "the timers' callouts never settled"
            time.sleep(0.01)

    def counted_served():
        return stack.stats("l402_quota_served_from_block") + stack.stats("l402_quota_leases")

    before, served_before = callouts(), counted_served()
    for envoy in stack.envoys:
        for _ in range(20):
            assert request(envoy.url, "/weather/today", plain).status == 200
    assert callouts() == before, "plain tokens: no callout"
    assert counted_served() == served_before
    fresh, fresh_id = counted_token(stack, 5)
    refused = request(stack.envoys[1].url, "/weather/today", fresh)
    assert refused.status == 503 and refused.header("retry-after")
    assert stack.served(fresh_id) == 0
    errors = 0
    for replica in stack.invoicers:
        status, body = replica.get("/readyz")
        assert status == 200 and body["redis"].startswith("down"), ("still issuing challenges", status, body)
        errors += sum(map(int, re.findall(r"^l402_redis_errors_total\{[^}]*\} (\d+)$", replica.get("/metrics")[1], re.M)))
    assert errors > 0, "the store's errors are not counted"
    stack.redis.start()
    deadline = time.monotonic() + 15
    while request(stack.envoys[1].url, "/weather/today", fresh).status != 200:
        assert time.monotonic() < deadline, "the store came back but counted tokens did not"
        time.sleep(0.3)


def test_redis_killed_under_load_never_lets_more_than_n_through_and_counting_resumes(stack):
    n, lease_size, clients = 300, 10, 8
    headers, token_id = counted_token(stack, n)
    threads = [Client(stack.envoys[i % 2].url, headers, limit=60, stop_on_402=False) for i in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while stack.served(token_id) < 30:
        assert time.monotonic() < deadline, "nothing was served"
        time.sleep(0.01)
    stack.redis.stop()
    for t in threads:
        t.join(120)
    during = [s for t in threads for s in t.statuses]
    assert 503 in during, "no request was refused while the store was down"
    assert stack.served(token_id) <= n
    stack.redis.start()
    last = Client(stack.envoys[0].url, headers)
    last.run()
    served = stack.served(token_id)
    assert served <= n, served
    # Blocks held when the store died could not be given back: their units stay counted.
    assert served >= n - clients * lease_size, served
    assert last.statuses[-1] == 402


def test_a_replica_killed_under_load_never_lets_more_than_n_through(stack):
    headers, token_id = counted_token(stack, 60)
    threads = [Client(stack.envoys[i % 2].url, headers) for i in range(16)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while stack.served(token_id) < 10:
        assert time.monotonic() < deadline, "nothing was served"
        time.sleep(0.01)
    stack.invoicers[1].stop()
    for t in threads:
        t.join(120)
    assert stack.served(token_id) <= 60
    assert stack.served(token_id) >= 40, "the surviving replica kept serving"


# The documented bound: the read interval (500 ms here) plus a callout and a tick.
REVOCATION_BOUND_SECONDS = 0.5 + 1.0
# A revoked token's answers: a challenge, or the challenge limit's refusal to issue one.
REFUSED = {402, 429}


def test_revocation_reaches_every_keep_alive_connection_and_survives_the_store(stack):
    headers, token_id = counted_token(stack, None)
    threads = [Client(stack.envoys[i % 2].url, headers, stop_on_402=False) for i in range(16)]
    for t in threads:
        t.start()
    time.sleep(1)
    assert stack.served(token_id) > 16
    revoked_at = time.monotonic()
    assert stack.revoke(token_id)["revoked"] == token_id
    time.sleep(REVOCATION_BOUND_SECONDS + 1)
    for t in threads:
        t.halt.set()
        t.join(30)
    last_served = max(when for t in threads for when, s in zip(t.times, t.statuses) if s == 200)
    took = last_served - revoked_at
    print(f"revoked token last served {took * 1000:.0f} ms after the revocation was recorded")
    assert took < REVOCATION_BOUND_SECONDS, took
    # After the revocation every answer is a refusal: a 402 first, then 402s or, once these
    # 16 loops have spent the per-client challenge burst, the invoice service's 429.
    for t in threads:
        first_refusal = next(i for i, s in enumerate(t.statuses) if s != 200)
        after = t.statuses[first_refusal:]
        assert after[0] == 402 and len(after) >= 2, t.statuses[-10:]
        assert set(after) <= REFUSED, sorted(set(after))
    # Each Envoy: with the .wasm, two workers and the main thread's context; the dynamic module
    # keeps one list per configuration, shared by its threads.
    readers = 3 if current_build() == "wasm" else 1
    assert stack.stats("l402_revocations_applied") == 2 * readers, "every reader learnt it, once"
    stack.redis.stop()
    time.sleep(1.5)
    for envoy in stack.envoys:
        assert request(envoy.url, "/weather/today", headers).status in REFUSED, "never un-revoked"


def test_shared_challenge_limits_hold_across_replicas(tmp_path, net):
    with QuotaStack(tmp_path, net, envoys=1, per_client_burst=5, shared_limits=True) as stack:
        statuses = [stack.invoicers[i % 2].challenge(client_ip="198.51.100.7:1000")[0] for i in range(10)]
        assert statuses.count(200) == 5, statuses
        assert statuses.count(429) == 5
        # With the buckets in the store, no challenge can be issued without it: out of rotation.
        stack.redis.stop()
        for replica in stack.invoicers:
            status, body = replica.get("/readyz")
            assert status == 503 and "unreachable" in body["error"], (status, body)


def test_l402_revoke_needs_the_admin_token_and_never_prints_it(stack):
    _, token_id = counted_token(stack, None)
    url = stack.invoicers[1].url
    missing = l402("revoke", "--service", url, token_id, check=False, env={"L402_ADMIN_TOKEN": ""})
    assert missing.returncode == 2 and "L402_ADMIN_TOKEN" in missing.stderr
    wrong = l402("revoke", "--service", url, token_id, check=False, env={"L402_ADMIN_TOKEN": "w" * 40})
    assert wrong.returncode == 1 and "401" in wrong.stderr and "w" * 40 not in wrong.stderr
    bad = l402("revoke", "--service", url, "nothex", check=False, env={"L402_ADMIN_TOKEN": stack.admin_token})
    assert bad.returncode == 2 and "64 hex" in bad.stderr
    first = stack.revoke(token_id)
    assert first == stack.revoke(token_id), "revoking twice keeps the first number"
    assert stack.admin_token not in json.dumps(first)


def test_a_hung_store_is_a_prompt_503_for_counted_tokens_only(stack):
    plain, _ = counted_token(stack, None)
    counted, counted_id = counted_token(stack, 5)
    stack.redis.pause()
    try:
        started = time.monotonic()
        refused = request(stack.envoys[0].url, "/weather/today", counted)
        took = time.monotonic() - started
        assert refused.status == 503 and refused.header("retry-after"), refused.status
        # The store's command timeout (300 ms here) or the callout's (1 s), whichever is first.
        assert took < 1.5, took
        assert request(stack.envoys[0].url, "/weather/today", plain).status == 200
        assert stack.served(counted_id) == 0
    finally:
        stack.redis.resume()
    deadline = time.monotonic() + 15
    while request(stack.envoys[0].url, "/weather/today", counted).status != 200:
        assert time.monotonic() < deadline, "the store answered again but counted tokens did not"
        time.sleep(0.2)
