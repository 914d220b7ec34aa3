"""The HTML payment page in a real browser: Debian's Chromium (tests/support/browser.py) asks real
Envoy with the filter (both builds) for a paid path with a browser's Accept header and gets a 402
page: the invoice, a QR code that decodes (from a screenshot) to that invoice, the price, the
service, curl instructions with the macaroon, no external resources. A WebLN wallet backed by lnd
bob pays it on regtest and the page fetches the paid resource itself. Programs that do not ask for
HTML still get the JSON 402. Screenshots: target/test-output/<test>-<build>.png."""

import json
import re

import pytest

from browser import chromium, decode_qr, new_page, screenshot_path
from client import Response, challenge, payment_hash_of, request
from envoy_proc import use_build
from l402cli import decode
from stack import Stack

PATH = "/weather/today"
# The shipped weather service's price (crates/l402-invoicer/invoicer.toml), as the JSON 402 says.
WEATHER_SAT = 10
# A WebLN provider (webln.guide) whose wallet is lnd bob: sendPayment pays on regtest through the
# test's exposed payWithBob and resolves to {preimage} as a WebLN wallet does.
WEBLN = """
window.webln = {
  enable: async () => {},
  sendPayment: async (invoice) => ({ preimage: await window.payWithBob(invoice) }),
};
"""
EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*https?://""", re.I)


@pytest.fixture(scope="module")
def stack(net, tmp_path_factory, filter_build):
    use_build(filter_build)
    with Stack(tmp_path_factory.mktemp("stack"), net) as paywall:
        yield paywall


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(autouse=True)
def clear(stack):
    stack.upstream.requests.clear()


def as_response(response) -> Response:
    """A Playwright Response as tests/support/client.py's (every header value kept apart)."""
    headers = [(h["name"], h["value"]) for h in response.headers_array()]
    return Response(response.status, headers, response.body())


def open_page(page, stack):
    """Navigates to the paid path; returns (client.Response of the 402, macaroon, invoice)."""
    answer = page.goto(stack.envoy.url + PATH)
    assert answer is not None, "no response to the navigation"
    resp = as_response(answer)
    assert resp.status == 402, resp.body[:500]
    assert resp.header("content-type") == "text/html; charset=utf-8", resp.headers
    values = resp.header_values("www-authenticate")
    assert values[0].startswith('LSAT macaroon="') and values[1].startswith('L402 macaroon="'), values
    macaroon, invoice = challenge(resp)
    assert invoice == invoice.lower()
    return resp, macaroon, invoice


def text(page, selector) -> str:
    assert page.locator(selector).count() == 1, f"the page has no single {selector}"
    return (page.locator(selector).text_content() or "").strip()


def screenshot(page, name, build):
    path = screenshot_path(f"{name}-{build}")
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_qr_is(path, invoice):
    codes = decode_qr(path)
    assert len(codes) == 1, f"expected one QR code in {path}, found {codes}"
    code = codes[0]
    assert code.lower().startswith("lightning:"), code
    assert code[len("lightning:"):].lower() == invoice, f"the QR code in {path} is not the invoice"


def assert_shows_invoice_qr_and_curl(page, macaroon, invoice, shot):
    assert text(page, "#invoice") == invoice
    assert page.locator("#qr svg").count() >= 1, "the QR code is an inline <svg> inside #qr"
    assert_qr_is(shot, invoice)
    assert page.locator("pre#curl").count() == 1, "curl instructions in <pre id=curl>"
    curl = text(page, "pre#curl")
    assert "Authorization: L402 " in curl and macaroon in curl, curl


def test_a_browser_gets_the_payment_page(stack, browser, filter_build):
    price = request(stack.envoy.url, PATH, {"Accept": "application/json"}).json()["amount_msat"] // 1000
    assert price == WEATHER_SAT
    with new_page(browser) as page:
        requested, csp_errors = [], []
        page.on("request", lambda r: requested.append(r.url))
        page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
        resp, macaroon, invoice = open_page(page, stack)
        csp = resp.header("content-security-policy") or ""
        assert csp.startswith("default-src 'none'"), f"content-security-policy: {csp!r}"
        shot = screenshot(page, "payment_page", filter_build)

        assert_shows_invoice_qr_and_curl(page, macaroon, invoice, shot)
        assert re.search(rf"(?<!\d){price} sat\b", text(page, "#price")), text(page, "#price")
        assert "weather" in text(page, "#service")
        assert page.locator("button#webln-pay").count() == 1
        assert page.locator("button#copy-invoice").count() == 1

        html = resp.body.decode()
        assert not EXTERNAL.findall(html), f"external resources: {EXTERNAL.findall(html)}"
        foreign = [u for u in requested if not u.startswith(stack.envoy.url + "/")]
        assert not foreign, f"the page loaded from elsewhere: {foreign}"
        assert not csp_errors, f"the page's own CSP blocks it: {csp_errors}"
    assert stack.upstream.requests == [], "nothing unpaid reached the API"


def test_webln_pays_and_the_page_shows_the_paid_resource(stack, browser, filter_build):
    paid_by_bob = []

    def pay_with_bob(invoice):
        paid_by_bob.append(invoice)
        return stack.net.bob.pay(invoice)

    with new_page(browser) as page:
        page.expose_function("payWithBob", pay_with_bob)
        page.add_init_script(WEBLN)
        _, macaroon, invoice = open_page(page, stack)
        page.click("#webln-pay")
        # A selector, not wait_for_function: the page's CSP has no 'unsafe-eval' for a predicate.
        page.wait_for_selector("body[data-state=paid], body[data-state=failed]", state="attached",
                               timeout=90_000)
        state = page.locator("body").get_attribute("data-state")
        status = page.locator("#status").text_content() if page.locator("#status").count() else None
        shot = screenshot(page, "payment_page_paid", filter_build)
        assert state == "paid", f"data-state={state!r}, #status: {status!r} (see {shot})"
        paid = text(page, "#paid")

    assert paid_by_bob == [invoice], "WebLN was asked to pay the page's invoice, once"
    token_id = decode(macaroon)["l402"]["token_id"]
    assert json.loads(paid) == {"ok": True, "path": PATH, "paid_with_token": token_id}, paid
    assert stack.net.alice.invoice(payment_hash_of(macaroon))["state"] == "SETTLED"
    with_token = [r for r in stack.upstream.requests if "x-l402-token-id" in r["headers"]]
    assert len(with_token) == 1 and len(stack.upstream.requests) == 1, stack.upstream.requests
    assert with_token[0]["path"] == PATH
    assert with_token[0]["headers"]["x-l402-token-id"] == token_id
    assert "authorization" not in with_token[0]["headers"], "the credential is not passed on to the API"


def test_without_javascript_the_page_still_shows_invoice_qr_and_curl(stack, browser, filter_build):
    with new_page(browser, java_script_enabled=False) as page:
        _, macaroon, invoice = open_page(page, stack)
        shot = screenshot(page, "payment_page_nojs", filter_build)
        assert_shows_invoice_qr_and_curl(page, macaroon, invoice, shot)
    assert stack.upstream.requests == []


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
def test_programs_still_get_the_json_402(stack, accept):
    resp = request(stack.envoy.url, PATH, {"Accept": accept} if accept else {})
    assert resp.status == 402
    assert (resp.header("content-type") or "").split(";")[0].strip() == "application/json", resp.headers
    body = resp.json()
    assert body["amount_msat"] == WEATHER_SAT * 1000 and body["service"] == "weather", body
    values = resp.header_values("www-authenticate")
    assert values[0].startswith('LSAT macaroon="') and values[1].startswith('L402 macaroon="'), values
    challenge(resp)
    assert stack.upstream.requests == []
