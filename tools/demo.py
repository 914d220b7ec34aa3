"""The demo: the whole L402 flow on a real regtest Lightning network, step by step.
Run through scripts/demo.sh, which builds everything first and runs it with the cache's venv:

    scripts/demo.sh [--once]
"""

import argparse
import datetime
import signal
import sys
import tempfile
import time
from pathlib import Path

# The demo runs the same stack as the end-to-end tests: their helpers in tests/support.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from client import authorization, challenge, request  # noqa: E402
from l402cli import decode  # noqa: E402
from regtest import Regtest  # noqa: E402
from stack import Stack  # noqa: E402

BOLD, DIM, GREEN, YELLOW, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[33m", "\033[0m"


def say(title: str):
    print(f"\n{BOLD}{title}{RESET}", flush=True)


def show(text: str):
    for line in text.rstrip().splitlines():
        print(f"    {line}")


def short(text: str, keep=48) -> str:
    return text if len(text) <= keep * 2 else f"{text[:keep]}…{text[-12:]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="tear everything down after the walkthrough")
    args = parser.parse_args()
    # Ctrl-C and SIGTERM both end in the `finally` blocks that stop every process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    workdir = Path(tempfile.mkdtemp(prefix="envoy-l402-demo-"))
    say("1. Starting a regtest Lightning network (btcd, lnd alice = merchant, lnd bob = payer)")
    with Regtest(workdir, log=lambda m: print(f"    {DIM}{m}{RESET}", flush=True)) as net:
        say("2. Starting the invoice service (in front of alice), Envoy with the L402 filter, and the API")
        with Stack(workdir, net) as stack:
            token = walkthrough(stack)
            if args.once:
                say(f"{GREEN}Done.{RESET} Tearing down (--once).")
                return
            keep_running(stack, token)


def walkthrough(stack: Stack) -> tuple[str, str]:
    """The flow, step by step; returns the paid (macaroon, preimage)."""
    url = stack.envoy.url
    say(f"3. A client asks for the API without paying:  GET {url}/weather/today")
    first = request(url, "/weather/today")
    show(f"HTTP {first.status}")
    macaroon, invoice = challenge(first)
    for value in first.header_values("www-authenticate"):
        scheme = value.split(" ", 1)[0]
        show(f'WWW-Authenticate: {scheme} macaroon="{macaroon[:24]}…", invoice="{invoice[:24]}…"')

    say("4. The challenge, decoded (l402 decode): what the client is asked to buy")
    decoded = decode(macaroon)
    on_lnd = stack.net.alice.invoice(decoded["l402"]["payment_hash"])
    expires = int(on_lnd["creation_date"]) + int(on_lnd["expiry"])
    show(f"amount:       {int(on_lnd['value_msat']) // 1000} sat ({on_lnd['value_msat']} msat), memo \"{on_lnd['memo']}\"")
    show(f"payment hash: {decoded['l402']['payment_hash']}")
    show(f"token id:     {decoded['l402']['token_id']}")
    show(f"invoice:      {short(invoice)} (expires {datetime.datetime.fromtimestamp(expires):%H:%M:%S})")
    for caveat in decoded["caveats"]:
        note = ""
        if "_valid_until=" in caveat:
            note = f"  (token valid until {datetime.datetime.fromtimestamp(int(caveat.split('=')[1])):%Y-%m-%d %H:%M})"
        show(f"caveat:       {caveat}{note}")

    say("5. Bob pays the invoice over the regtest channel and learns the preimage")
    started = time.time()
    preimage = stack.net.bob.pay(invoice)
    show(f"preimage:     {preimage}  ({(time.time() - started) * 1000:.0f} ms)")
    show(f"alice's invoice is now {stack.net.alice.invoice(decoded['l402']['payment_hash'])['state']}")

    say("6. The client retries with Authorization: L402 <macaroon>:<preimage>")
    paid = request(url, "/weather/today", authorization(macaroon, preimage))
    show(f"HTTP {paid.status}")
    show(paid.body.decode())
    if paid.status != 200:
        raise SystemExit(f"expected 200 after paying, got {paid.status}")

    say("7. The token is reusable until it expires; no new invoice, no I/O in Envoy")
    started = time.time()
    statuses = [request(url, "/weather/today", authorization(macaroon, preimage)).status for _ in range(20)]
    show(f"20 more requests: {sorted(set(statuses))} in {(time.time() - started) * 1000:.0f} ms")
    other = request(url, "/news/today", authorization(macaroon, preimage))
    show(f"the same token on /news/today (another service): HTTP {other.status} with a fresh challenge")
    return macaroon, preimage


def keep_running(stack: Stack, token: tuple[str, str]):
    url = stack.envoy.url
    macaroon, preimage = token
    bob = stack.net.bob
    lncli = (f"{bob.bin_dir / 'lncli'} --lnddir={bob.dir} --network=regtest "
             f"--rpcserver=127.0.0.1:{bob.rpc_port}")
    say(f"{GREEN}The stack is up.{RESET} Try it (Ctrl-C stops everything):")
    show(f"""curl -i {url}/weather/today
{lncli} payinvoice --force <invoice from the 402>
curl -i -H 'Authorization: L402 <macaroon>:<preimage>' {url}/weather/today

# the token paid above:
curl -i -H 'Authorization: L402 {macaroon}:{preimage}' {url}/weather/today

curl -s {stack.invoicer.url}/metrics          # invoice service metrics
curl -s http://127.0.0.1:{stack.envoy.admin}/stats | grep l402    # filter counters""")
    print(f"    {DIM}logs and data: {stack.workdir}{RESET}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print(f"\n{YELLOW}stopping…{RESET}")


if __name__ == "__main__":
    main()
