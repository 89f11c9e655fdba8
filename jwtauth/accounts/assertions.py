"""private_key_jwt: check a client's signed assertion (RFC 7523 §2.2, §3; OpenID Connect Core §9).

Every refusal is the same `invalid_client` body, whether the client is unknown, uses another
method or sent a bad assertion: the log line (detail) says which. The checks, in order:
- header: a compact JWS of at most 8 KiB, `alg` from the asymmetric allow-list and equal to the
  algorithm the client's key pins (never `none`, never HMAC), no `jku`/`x5u`/`jwk`/`x5c`/`crit`/`b64`
  (keys come from registration only: RFC 8725 §3.10), an optional `typ` of JWT;
- the signature, with the key named by `kid` (without a kid, the client's only key);
- claims (RFC 7523 §3): `iss` = `sub` = the client id; `aud` our issuer as one string (the token
  endpoint URL only behind [client_auth] accept_token_endpoint_audience, never for fapi2; never
  an array, which could name another party: CVE-2025-27370/27371); `exp` required, not past and
  at most MAX_LIFETIME ahead; `iat`/`nbf` not in the future; `jti` required;
- `jti` single use: SET NX until `exp` (store/assertions.py), last, so a forgery writes nothing.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import jwt

from jwtauth.accounts.client_keys import ClientKeys
from jwtauth.config.clients import Client
from jwtauth.errors import InvalidClient
from jwtauth.store.assertions import assertion_key
from jwtauth.verify.jwk import ALLOWED_ALGORITHMS
from jwtauth.verify.replay import ReplayCache
from jwtauth.verify.strictjson import decode_segment, parse_object

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION: Final = 8192
MAX_LIFETIME: Final = 300  # seconds an assertion may be valid for (issue 17; FAPI 2.0 §5.3.2.1 spirit)
LEEWAY: Final = 30  # seconds of clock skew between client and server
SIGNING_ALGORITHMS: Final = tuple(sorted(ALLOWED_ALGORITHMS))
# Key material and key URLs (keys come from registration only), extensions, and RFC 7797's b64,
# so no assertion has two readings of one payload segment.
_REFUSED_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64"})
_TYPES: Final = frozenset({"jwt", "client-authentication+jwt"})
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_MAX_STRING: Final = 256
FAILED: Final = "client authentication failed"


def refused(detail: str) -> InvalidClient:
    """Return the one answer every refused assertion gets; `detail` goes to the log only."""
    return InvalidClient(FAILED, detail=f"client assertion: {detail}")


def parts(assertion: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Return the unverified header and claims of a compact JWS, or raise the refusal."""
    return _parsed(assertion)[:2]


@functools.lru_cache(maxsize=64)
def _parsed(assertion: str) -> tuple[Mapping[str, Any], Mapping[str, Any], bytes, bytes]:
    """Return header, claims (read-only), signing input and signature of a compact JWS.

    Kept for a moment: the token endpoint reads the assertion's `sub` to find the client, then
    checks it, in the same request; the refusal of a malformed one is never kept.
    """
    segments = assertion.split(".")
    if (
        len(assertion) > MAX_ASSERTION
        or len(segments) != 3
        or not all(_B64URL.fullmatch(s) for s in segments)
    ):
        raise refused("not a compact JWS")
    try:
        header, claims = (parse_object(decode_segment(segment)) for segment in segments[:2])
        signature = decode_segment(segments[2])
    except (ValueError, TypeError):
        raise refused("malformed header or claims") from None
    signing_input = f"{segments[0]}.{segments[1]}".encode("ascii")
    return MappingProxyType(header), MappingProxyType(claims), signing_input, signature


def claimed_client(assertion: str) -> str:
    """Return the client id the assertion claims to come from (its `sub`), unverified."""
    sub = parts(assertion)[1].get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= _MAX_STRING:
        raise refused("no sub")
    return sub


class AssertionChecker:
    """Verify private_key_jwt assertions against registered keys, each accepted once."""

    def __init__(
        self,
        *,
        issuer: str,
        token_endpoint: str,
        accept_token_endpoint_audience: bool,
        keys: ClientKeys,
        markers: ReplayCache,
        clock: Callable[[], float],
    ) -> None:
        self.issuer, self.token_endpoint = issuer, token_endpoint
        self.accept_endpoint = accept_token_endpoint_audience
        self.keys, self.markers, self.clock = keys, markers, clock

    def check(self, client: Client, assertion: str) -> Client:
        """Return `client` if the assertion proves it, or raise the one InvalidClient."""
        header, claims, signing_input, signature = _parsed(assertion)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise refused(f"algorithm {str(alg)[:20]!r} is not allowed")
        if _REFUSED_HEADERS & header.keys():
            raise refused("key material, key URLs, crit or b64 in the header")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in _TYPES):
            raise refused("typ is not JWT")
        if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= _MAX_STRING):
            raise refused("malformed kid")
        key = self.keys.key_for(client, kid)
        if key is None:
            raise refused("no registered key for this kid")
        if key.algorithm_name != alg:  # RFC 8725 §3.1: the key pins the algorithm
            raise refused("alg differs from the registered key's algorithm")
        # The key's own algorithm (pinned to `alg` above) checks the signature over the segments
        # as sent; registration vetted the key (verify/jwk.py: RSA of 2048 bits or more).
        try:
            verified = key.Algorithm.verify(signing_input, key.key, signature)
        except (jwt.PyJWTError, ValueError, TypeError):
            verified = False
        if not verified:
            raise refused("signature does not verify")
        exp = self._checked_claims(client, claims)
        jti = claims["jti"]
        # RFC 7523 §3 item 7: the server MAY ensure a jti is used once; here it MUST (issue 17).
        if not self.markers.first_use(assertion_key(client.client_id, jti), exp + LEEWAY - self.clock()):
            raise refused("jti was already used")
        return client

    def _checked_claims(self, client: Client, claims: Mapping[str, Any]) -> float:
        """Check iss, sub, aud, exp, iat, nbf and jti (RFC 7523 §3); return exp."""
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise refused("iss and sub must both be the client id")
        aud = claims.get("aud")
        accepted = {self.issuer} | (
            {self.token_endpoint} if self.accept_endpoint and not client.fapi2 else set()
        )
        if not isinstance(aud, str) or aud not in accepted:
            raise refused("aud must be the issuer identifier, as one string")
        now = self.clock()
        exp = _time(claims, "exp", required=True)
        if exp is None or now >= exp + LEEWAY:
            raise refused("expired")
        if exp > now + MAX_LIFETIME + LEEWAY:
            raise refused(f"exp is more than {MAX_LIFETIME} s away")
        for name in ("iat", "nbf"):
            moment = _time(claims, name, required=False)
            if moment is not None and moment > now + LEEWAY:
                raise refused(f"{name} is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_STRING:
            raise refused("no valid jti")
        return exp


def _time(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise refused(f"{name} is not a NumericDate")
    return float(value)
