"""An L402 client as the real ones behave: read the first WWW-Authenticate value a client's
pattern matches, pay the invoice, retry with `Authorization: L402 <macaroon>:<preimage>`. The
one challenge parser and the one HTTP helper of the tests and the demo."""

import base64
import http.client
import json
import re
from typing import NamedTuple
from urllib.parse import urlsplit

# The patterns real clients read a challenge with. lnget (lightninglabs/lnget, l402/header.go):
# case-insensitive, any whitespace. Aperture's Go client (l402/client_interceptor.go): exactly one
# space after the scheme and after the comma, case-sensitive. A challenge must read the same
# under both.
LNGET = re.compile(r'(?i)(LSAT|L402)\s+macaroon="([^"]+)",\s*invoice="([^"]+)"')
APERTURE = re.compile(r'(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"')


class Challenge(NamedTuple):
    scheme: str
    macaroon: str
    invoice: str


class Response:
    def __init__(self, status: int, headers: list, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str):
        """The first value of header `name`, or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_values(self, name: str) -> list:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def request(base_url: str, path: str, headers=(), method="GET", body: bytes | None = None, timeout=30,
            source: str | None = None) -> Response:
    """One HTTP/1.1 request. `headers`: a dict or (name, value) pairs, values str or bytes, sent
    as given (a test may send non-UTF-8 values, or its own Host instead of the URL's); `source`:
    the local address to connect from."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    names = {name.lower() for name, _ in pairs}
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.putrequest(method, path, skip_host="host" in names)
        for name, value in pairs:
            conn.putheader(name, value)
        if body is not None and "content-length" not in names:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def read_challenge(value: str) -> Challenge | None:
    """The challenge in one WWW-Authenticate value as lnget and Aperture's client both read it;
    None when either cannot read it or they read it differently."""
    readings = {m.groups() if m else None for m in (LNGET.search(value), APERTURE.search(value))}
    reading = readings.pop()
    return Challenge(*reading) if reading and not readings else None


def challenge(response: Response) -> tuple[str, str]:
    """(macaroon_base64, invoice) from a 402: the first WWW-Authenticate value a client reads."""
    for value in response.header_values("www-authenticate"):
        reading = read_challenge(value)
        if reading:
            return reading.macaroon, reading.invoice
    raise AssertionError(f"no L402 challenge in {response.headers}")


def payment_hash_of(macaroon_b64: str) -> str:
    """The payment hash inside the macaroon's identifier (what lnget reads): the identifier is
    the first packet after the location in a V2 macaroon."""
    raw = base64.b64decode(macaroon_b64)
    at = 1
    fields = {}
    while raw[at] != 0:
        kind, length = raw[at], raw[at + 1]
        fields[kind] = raw[at + 2:at + 2 + length]
        at += 2 + length
    identifier = fields[2]
    assert identifier[:2] == b"\x00\x00", "identifier version 0"
    return identifier[2:34].hex()


def authorization(macaroon_b64: str, preimage_hex: str, scheme="L402") -> dict:
    return {"Authorization": f"{scheme} {macaroon_b64}:{preimage_hex}"}
