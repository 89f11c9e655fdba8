"""Fetch issuer metadata and JWK Sets over HTTP without being led astray by URL or server.

``Fetch`` is the seam the verifier fetches through; ``urllib_fetch`` is the default, and
refuses anything but https (http only on loopback), redirects and oversized bodies.
"""

from __future__ import annotations

import inspect
import ipaddress
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from email.message import Message
from typing import IO, Any, Final

from jwtauth.verify.errors import NotModified

__all__ = ["Fetch", "takes_headers", "urllib_fetch"]

Fetch = Callable[..., tuple[bytes, Mapping[str, str]]]
"""Fetch a URL and return its body and response headers; raise on any failure.

Called as ``fetch(url)``. A fetch that also takes a ``headers`` keyword gets the request
headers of a JWK Set refresh (``If-None-Match``, ``Cache-Control: no-cache``) and raises
``NotModified`` for a 304; ``urllib_fetch`` does both.
"""

_LOOPBACK_NAMES: Final = frozenset({"localhost"})


class _FetchRefused(ValueError):
    """Signal that the default fetcher refused a URL or a response."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects, which could move a https fetch onto plain http."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        """Return no follow-up request, so urllib raises HTTPError for the 3xx."""
        return None


def urllib_fetch(
    url: str,
    *,
    timeout: float = 5.0,
    max_bytes: int = 512 * 1024,
    headers: Mapping[str, str] | None = None,
) -> tuple[bytes, Mapping[str, str]]:
    """Fetch ``url`` with urllib: https (http only on loopback), no redirects, capped size.

    ``headers`` are added to the request; a 304 answer raises ``NotModified``.
    """
    parts = urllib.parse.urlsplit(url)
    # Whoever controls the JWKS can mint tokens: plain http is allowed only where no
    # network path exists to tamper with it (RFC 8414 §2 requires https issuers).
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise _FetchRefused(f"refusing to fetch {parts.scheme}://{parts.hostname}")
    opener = urllib.request.build_opener(_NoRedirect)
    # The scheme was checked above, so S310 (file:, ftp:) does not apply.
    sent = {"Accept": "application/json", **(headers or {})}
    request = urllib.request.Request(url, headers=sent)  # noqa: S310
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # an error response still holds a socket
        if exc.code == 304:  # RFC 9110 §15.4.5: what we hold is still current
            raise NotModified(dict(exc.headers.items())) from None
        raise
    with response:
        body: bytes = response.read(max_bytes + 1)
        received = dict(response.headers.items())
    if len(body) > max_bytes:
        raise _FetchRefused(f"response from {url} exceeds {max_bytes} bytes")
    return body, received


def is_loopback(host: str | None) -> bool:
    """Tell whether ``host`` names this machine."""
    if host is None:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def takes_headers(fetch: Callable[..., Any]) -> bool:
    """Tell whether ``fetch`` accepts a ``headers`` keyword (the extended Fetch seam)."""
    try:
        parameters = inspect.signature(fetch).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: use the one-argument form
        return False
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return any(
        (p.name == "headers" and p.kind in named) or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in parameters
    )
