"""CSRF tokens for the authorize form: bound to one browser, one authorization request, minutes.

Design (a cookie-keyed HMAC, a variant of the "signed double-submit cookie"):

- GET /authorize gives the browser a random 256-bit cookie (HttpOnly, SameSite=Lax, and under
  https Secure with the `__Host-` prefix), or keeps the well-formed one it already has so that
  two open tabs do not invalidate each other.
- The form carries `<expiry>.<HMAC-SHA256(key=cookie, msg=expiry + the request's parameters)>`.
- POST recomputes the HMAC from the cookie the browser sent and the parameters it posted.

Why it holds: a cross-site attacker cannot read the cookie (same-origin policy, HttpOnly), the
browser does not send it with a cross-site POST (SameSite), and the `__Host-` prefix stops a
sibling subdomain from planting a cookie whose value it knows. Changing any bound parameter
(hidden fields, redirect_uri, scope, PKCE challenge) or waiting past the expiry breaks the MAC.

Why this design: the key travels with the request, so any worker on any host can check the
token with no shared secret and no state. A per-process secret fails as soon as the GET and
the POST land on different workers; a Redis nonce per page view would let anonymous page views
write to Redis. The form is also a login form: it is useless without the password anyway, so
the token's job is to stop login CSRF and forged decisions, which this does.

Cookie tossing (issue 18): without `__Host-` (an http issuer) a sibling host can plant a cookie
it knows and fetch a token for it. So a POST must also come from our own origin, as the browser
says in `Origin` (a header no page can set; the page's `Referrer-Policy: same-origin` makes the
browser send it rather than "null"). A request without `Origin` (non-browser clients, browsers
too old to send it) relies on the token alone. http issuers other than loopback need the
development setting `allow_http_issuer`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from jwt.utils import base64url_encode

TTL = 600  # seconds to fill in the form: long enough to find a password, short enough to expire
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_TOKEN = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def origin_of(url: str) -> str:
    """Return the RFC 6454 origin of `url` as browsers serialize it (default port dropped)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def same_origin(origin: str | None, issuer: str) -> bool:
    """Return whether a POST's `Origin` header is the issuer's origin, or absent (RFC 6454 §7)."""
    return origin is None or origin.strip() == origin_of(issuer)


def cookie_name(secure: bool) -> str:
    """Return the cookie name; `__Host-` pins it to this origin (RFC 6265bis §4.1.3.2)."""
    return "__Host-jwtauth-csrf" if secure else "jwtauth-csrf"


def browser_secret(cookie: str | None) -> str:
    """Return the browser's well-formed secret, or a new one (256 random bits)."""
    if cookie is not None and _SECRET.fullmatch(cookie):
        return cookie
    return secrets.token_urlsafe(32)


def issue(secret: str, params: Mapping[str, str], names: Sequence[str], *, now: float) -> str:
    """Return a token for these request parameters, valid for TTL seconds."""
    expiry = int(now) + TTL
    return f"{expiry}.{_mac(secret, expiry, params, names)}"


def check(
    secret: str | None, token: str | None, params: Mapping[str, str], names: Sequence[str], *, now: float
) -> bool:
    """Return whether `token` was issued for this browser and these parameters and is unexpired."""
    if secret is None or token is None or not _SECRET.fullmatch(secret):
        return False
    match = _TOKEN.fullmatch(token)
    if match is None or now >= int(match[1]):
        return False
    return hmac.compare_digest(match[2], _mac(secret, int(match[1]), params, names))


def _mac(secret: str, expiry: int, params: Mapping[str, str], names: Sequence[str]) -> str:
    # JSON of a fixed-order list: unambiguous, an omitted parameter (null) differs from any value.
    message = json.dumps([expiry, [[n, params.get(n)] for n in names]], separators=(",", ":"))
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64url_encode(digest).decode()
