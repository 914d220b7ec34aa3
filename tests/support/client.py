"""An L402 client as the real ones behave: read the first WWW-Authenticate value with lnget's
pattern, pay the invoice, retry with `Authorization: L402 <macaroon>:<preimage>`."""

import base64
import http.client
import json
import re
from urllib.parse import urlsplit

# lnget / Aperture client pattern: the first value that matches wins.
CHALLENGE = re.compile(r'(LSAT|L402) macaroon="(.*?)", invoice="(.*?)"')


class Response:
    def __init__(self, status: int, headers: list, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_values(self, name: str) -> list:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def request(base_url: str, path: str, headers=None, method="GET", body=None, timeout=30) -> Response:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def challenge(response: Response):
    """(macaroon_base64, invoice) from a 402, as lnget reads it."""
    for value in response.header_values("www-authenticate"):
        m = CHALLENGE.search(value)
        if m:
            return m.group(2), m.group(3)
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
