"""How mainstream servers route a request line, modelled independently of the filter's code: the
oracle the spelling tests judge a paywall by. A request is a paid one if any model routes it into
a paid area.

Models (what each does to the path before routing):
- rfc:      RFC 3986 normalisation (unreserved escapes decoded, dot segments, merged slashes)
            (Envoy's normalize_path, most reverse proxies)
- nginx:    every escape decoded (%2F included), dot segments, merged slashes
- tomcat:   `;params` stripped from every segment first, then decoded, dot segments (Tomcat, Jetty,
            Spring)
- express:  nothing decoded or resolved, case-insensitive, a trailing slash optional (Express'
            defaults; routers with `/:param` match `..` as a parameter)
- iis:      `\\` is `/`, every escape decoded, dot segments, case-insensitive (IIS, ASP.NET)
- wsgi:     every escape decoded, dot segments kept (WSGI PATH_INFO under a router that does not
            normalise)
Hosts: case-insensitive, port and trailing dots ignored. Methods: HEAD runs GET's handler, and the
method-override headers and `?_method=` are honoured. Some upstreams take the path from X-Original-URL or
X-Rewrite-URL (Symfony, IIS URL Rewrite) and the host from X-Forwarded-Host or Forwarded (Rails,
Django behind proxies): those are read too.
"""

import re

OVERRIDES = ("x-http-method-override", "x-http-method", "x-method-override")
PATH_OVERRIDES = ("x-original-url", "x-rewrite-url")


def _decode(path: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), path)


def _unreserved_only(path: str) -> str:
    unreserved = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return re.sub(r"%([0-9A-Fa-f]{2})",
                  lambda m: chr(int(m.group(1), 16)) if chr(int(m.group(1), 16)) in unreserved
                  else m.group(0).upper(), path)


def _resolve(path: str) -> str:
    out = []
    segments = path.split("/")[1:]
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment not in (".", ""):
            out.append(segment)
    trailing = segments and segments[-1] in ("", ".", "..")
    return "/" + "/".join(out) + ("/" if trailing and out else "")


def _merge(path: str) -> str:
    return re.sub(r"/{2,}", "/", path)


def _strip_params(path: str) -> str:
    return "/".join(segment.split(";", 1)[0] for segment in path.split("/"))


MODELS = {
    "rfc": (lambda p: _resolve(_unreserved_only(p)), False),
    "nginx": (lambda p: _resolve(_decode(p)), False),
    "tomcat": (lambda p: _resolve(_decode(_strip_params(p))), False),
    "express": (lambda p: p, True),
    "iis": (lambda p: _resolve(_decode(p.replace("\\", "/"))), True),
    "wsgi": (lambda p: _merge(_decode(p)), False),
}


def canonical_host(host: str) -> str:
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


class PaidAreas:
    """The paid routes of a filter configuration (prefix and exact routes; free ones ignored)."""

    def __init__(self, routes):
        self.areas = [r for r in routes if not r.get("free")]

    def paid(self, method: str, raw_path: bytes, host: bytes, headers: dict) -> list:
        """The models that route this request into a paid area (empty: no model does)."""
        headers = {k.lower(): v for k, v in headers.items()}
        paths = [raw_path.decode("latin-1")] + [headers[h] for h in PATH_OVERRIDES if h in headers]
        paths = [p.split("?", 1)[0] for p in paths]
        hosts = {canonical_host(host.decode("latin-1"))}
        hosts |= {canonical_host(h.strip()) for h in headers.get("x-forwarded-host", "").split(",") if h.strip()}
        hosts |= {canonical_host(m.strip('"')) for m in re.findall(r'(?i)host=("[^"]*"|[^;,]*)',
                                                                  headers.get("forwarded", ""))}
        methods = {method.upper()} | ({"GET"} if method.upper() == "HEAD" else set())
        methods |= {v.upper() for k, v in headers.items() if k in OVERRIDES}
        query = raw_path.decode("latin-1").partition("?")[2]
        methods |= {v.upper() for k, _, v in (p.partition("=") for p in query.split("&")) if k == "_method"}
        found = []
        for name, (read, folded) in MODELS.items():
            for path in paths:
                seen = read(path) if path.startswith("/") else path
                if any(self._covers(area, seen, folded, methods, host) for area in self.areas for host in hosts):
                    found.append(name)
                    break
        return found

    @staticmethod
    def _covers(area, path, folded, methods, host):
        if area.get("hosts") and host not in {h.lower() for h in area["hosts"]}:
            return False
        if area.get("methods") and not methods & {m.upper() for m in area["methods"]}:
            return False
        match = area["match"]
        pattern = match.get("prefix") or match.get("exact")
        if pattern is None:
            return False
        if folded:
            path, pattern = path.lower(), pattern.lower()
        if "prefix" in match:
            return path.startswith(pattern) or path == pattern.rstrip("/")
        return path == pattern or path.rstrip("/") == pattern.rstrip("/")
