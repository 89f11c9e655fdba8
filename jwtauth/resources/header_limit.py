"""Refuse requests whose header section is larger than any legitimate client sends (issue 18).

Header bytes cost memory and parsing an attacker chooses; a 64 KB `Cookie` must not be served.
`jwtauth serve` caps the request head in granian (its HTTP/1 read buffer, see cli/serve.py);
this middleware applies the same cap to the headers the WSGI server hands over, so the limit
holds behind any server, with 431 Request Header Fields Too Large (RFC 6585 §5).
"""

from __future__ import annotations

from typing import Any

import falcon

# Browsers and proxies commonly allow 8-16 KiB per head (nginx's large_client_header_buffers:
# 4 x 8k); 16 KiB leaves room for big cookies and a DPoP proof (at most 4 KiB) beside a token.
MAX_HEADER_BYTES = 16384
# The two headers WSGI passes without the HTTP_ prefix (PEP 3333).
_CONTENT_HEADERS = frozenset(("CONTENT_TYPE", "CONTENT_LENGTH"))


class HeaderLimit:
    """Falcon middleware: 431 for a header section above `MAX_HEADER_BYTES` (names, values, separators)."""

    def __init__(self, limit: int = MAX_HEADER_BYTES) -> None:
        self.limit = limit

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        env = req.env
        # A bound first, in C loops: every key and every text value of the environ, plus 4 for
        # each of the two content headers, can only exceed the header section's size. Only a
        # request near the cap pays for the exact sum.
        if sum(map(len, env)) + 8 + sum(map(len, [v for v in env.values() if type(v) is str])) <= self.limit:
            return
        if _header_bytes(env) > self.limit:
            raise falcon.HTTPRequestHeaderFieldsTooLarge(
                title="request header fields too large", description="the request headers are too large"
            )


def _header_bytes(env: dict[str, Any]) -> int:
    """Return the size of the header section a WSGI environ carries: names, values, separators."""
    # The WSGI environ as it is, not Falcon's `req.headers`, which builds a dict of every
    # header per request for this sum alone: HTTP_X_Y is the header X-Y, 5 characters shorter.
    size = 0
    for name, value in env.items():
        if name.startswith("HTTP_"):
            size += len(name) - 1 + len(value)
        elif name in _CONTENT_HEADERS:
            size += len(name) + 4 + len(value)
    return size
