"""Check an access token's JOSE header, signature and RFC 9068 claims against one issuer."""

from __future__ import annotations

import hmac
import math
import re
import time
from collections.abc import Mapping
from typing import Any, Final

import jwt

from jwtauth.verify.errors import InvalidToken
from jwtauth.verify.fetch import Fetch, urllib_fetch
from jwtauth.verify.jwk import ALLOWED_ALGORITHMS
from jwtauth.verify.jwks import Clock, JwksCache
from jwtauth.verify.revocations import RevocationList
from jwtauth.verify.strictjson import decode_segment, header_object, parse_object

__all__ = ["Verifier", "token_scopes"]

# RFC 7515 §4.1.2-4.1.6 and RFC 8725 §3.10: key material or key URLs named by the
# token itself are attacker-chosen; never fetched, never used, and refused outright.
_FORBIDDEN_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c"})
# RFC 9068 §4: typ must be at+jwt; RFC 7515 §4.1.9 allows the full media type.
_ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
# RFC 9068 §2.2: claims every access token carries.
_REQUIRED_CLAIMS: Final = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")
_STRING_CLAIMS: Final = ("iss", "sub", "jti", "client_id")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_MAX_KID_LENGTH: Final = 256


def token_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """Return the scopes granted by verified claims (RFC 9068 §2.2.3: space-delimited)."""
    scope = claims.get("scope")
    return frozenset(scope.split()) if isinstance(scope, str) else frozenset()


class Verifier:
    """Verify RFC 9068 JWT access tokens against an issuer's published JWK Set.

    Keys come from ``jwks_uri`` or, when it is None, from the ``jwks_uri`` of the
    issuer's RFC 8414 metadata (falling back to OpenID discovery). Nothing is fetched
    until the first ``verify``. The JWK Set is cached for the response's
    ``Cache-Control: max-age`` (``default_max_age`` without one), clamped to
    [``min_max_age``, ``max_max_age``]. A token naming an unknown ``kid`` refreshes
    the set, but no fetch of any kind follows another within ``refetch_interval``.
    When a refresh fails, the last set keeps serving for up to ``stale_if_error``
    seconds past its expiry.

    ``revocations=True`` subscribes to the issuer's signed revocation document
    (``jwtauth.verify.revocations``; jwtauth servers only): tokens of revoked refresh
    families and of subjects logged out everywhere are refused within the document's
    max-age, and when no current document can be had every token is refused
    (VerifierUnavailable) rather than accepted unchecked.

    ``fetch`` and ``clock`` are the seams for tests: ``clock`` drives both claim
    times and cache ages. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | None,
        verify_audience: bool = True,
        jwks_uri: str | None = None,
        fetch: Fetch = urllib_fetch,
        clock: Clock = time.time,
        leeway: float = 30.0,
        max_token_bytes: int = 8 * 1024,
        refetch_interval: float = 10.0,
        default_max_age: float = 300.0,
        min_max_age: float = 60.0,
        max_max_age: float = 24 * 3600.0,
        stale_if_error: float = 3600.0,
        revocations: bool = False,
    ) -> None:
        """Configure the verifier; fetch nothing yet."""
        if not issuer:
            raise ValueError("issuer is required")
        if verify_audience and not audience:
            raise ValueError(
                "audience is required; to skip the audience check pass "
                "audience=None and verify_audience=False"
            )
        if not verify_audience and audience is not None:
            raise ValueError("audience was given but verify_audience=False would ignore it")
        if not 0 < refetch_interval <= min_max_age <= default_max_age <= max_max_age:
            raise ValueError(
                "need 0 < refetch_interval <= min_max_age <= default_max_age <= max_max_age"
            )
        if leeway < 0 or stale_if_error < 0 or max_token_bytes <= 0:
            raise ValueError("need leeway >= 0, stale_if_error >= 0 and max_token_bytes > 0")
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._leeway = leeway
        self._max_token_bytes = max_token_bytes
        self._jwks = JwksCache(
            issuer=issuer,
            jwks_uri=jwks_uri,
            fetch=fetch,
            clock=clock,
            refetch_interval=refetch_interval,
            default_max_age=default_max_age,
            min_max_age=min_max_age,
            max_max_age=max_max_age,
            stale_if_error=stale_if_error,
        )
        self._revocations = (
            RevocationList(
                issuer=issuer, jwks=self._jwks, fetch=fetch, clock=clock,
                refetch_interval=refetch_interval, leeway=leeway,
            )
            if revocations
            else None
        )  # fmt: skip

    @property
    def refetch_interval(self) -> float:
        """Return the shortest time between two JWK Set fetches, in seconds."""
        return self._jwks.refetch_interval

    def verify(self, token: str, *, dpop_jkt: str | None = None) -> dict[str, Any]:
        """Return the claims of ``token`` if it is a valid access token; raise InvalidToken.

        ``dpop_jkt``: the thumbprint of the key a checked DPoP proof was signed with
        (``jwtauth.verify.dpop``); a token bound to a key (``cnf.jkt``) needs it, and it
        must be that key (RFC 9449 §7.1). Without it a bound token is refused.
        """
        header = self._checked_header(token)
        key = self._jwks.key_for(header["kid"])
        # RFC 8725 §3.1: the key pins the algorithm; the header only has to agree.
        if header["alg"] != key.algorithm_name:
            raise InvalidToken("algorithm does not match key")
        # The JWS checked here, not by PyJWS: it would parse the header a second time, and its
        # key-length rule is the JWK Set's already (verify/jwk.py). The signature covers the
        # header and payload segments exactly as sent (RFC 7515 §5.2).
        head, body, signature = token.split(".")
        payload, raw_signature = _b64url_decode(body), _b64url_decode(signature)
        try:
            signed = key.Algorithm.verify(f"{head}.{body}".encode("ascii"), key.key, raw_signature)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidToken("malformed token") from None
        if not signed:
            raise InvalidToken("bad signature")
        claims = _object_or_invalid(payload)
        self._check_claims(claims)
        _check_binding(claims, dpop_jkt)
        if self._revocations is not None:
            self._revocations.check(claims)
        return claims

    def _checked_header(self, token: str) -> Mapping[str, Any]:
        """Parse and vet the JOSE header before any key lookup or signature work."""
        if not isinstance(token, str):
            raise InvalidToken("malformed token")
        # Cap the size first: everything after this costs CPU the sender chooses.
        if len(token) > self._max_token_bytes:
            raise InvalidToken("token too large")
        if not token.isascii() or token.count(".") != 2:
            raise InvalidToken("malformed token")
        header = _header(token.split(".", 1)[0])
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise InvalidToken("malformed token")
        # RFC 8725 §2.1: "none" in any spelling means unsigned.
        if alg.lower() == "none":
            raise InvalidToken("unsigned token")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken("algorithm not allowed")
        typ = header.get("typ")
        # RFC 9068 §4 / RFC 8725 §3.11: explicit typing stops other JWTs posing as access tokens.
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken("not an access token")
        if _FORBIDDEN_HEADERS & header.keys():
            raise InvalidToken("token names its own key")
        # RFC 7515 §4.1.11: we implement no extensions, so any critical one is refused.
        if "crit" in header:
            raise InvalidToken("unsupported critical header")
        # Nor RFC 7797's b64, whatever its value: no token has two readings of one payload.
        if "b64" in header:
            raise InvalidToken("unsupported header: b64")
        kid = header.get("kid")
        if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_LENGTH:
            raise InvalidToken("missing key id")
        return header

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        """Enforce RFC 9068 §4 on verified claims."""
        for name in _REQUIRED_CLAIMS:
            if name not in claims:
                raise InvalidToken(f"missing claim: {name}")
        for name in _STRING_CLAIMS:
            if not isinstance(claims[name], str):
                raise InvalidToken(f"invalid claim: {name}")
        # RFC 9068 §4: iss must match exactly; no normalisation of slashes or case.
        if claims["iss"] != self._issuer:
            raise InvalidToken("wrong issuer")
        audiences = _audiences(claims["aud"])
        if self._audience is not None and self._audience not in audiences:
            raise InvalidToken("wrong audience")
        if "scope" in claims and not isinstance(claims["scope"], str):
            raise InvalidToken("invalid claim: scope")
        now = self._clock()
        # RFC 7519 §4.1.4-4.1.6: the leeway absorbs clock skew between the two servers.
        if now >= _numeric_date(claims, "exp") + self._leeway:
            raise InvalidToken("token expired")
        if "nbf" in claims and now < _numeric_date(claims, "nbf") - self._leeway:
            raise InvalidToken("token not yet valid")
        if now < _numeric_date(claims, "iat") - self._leeway:
            raise InvalidToken("token issued in the future")


def _check_binding(claims: Mapping[str, Any], dpop_jkt: str | None) -> None:
    """Refuse a DPoP-bound token without its key's proof, and a proof of another key."""
    if "cnf" not in claims:
        if dpop_jkt is not None:
            # RFC 9449 §7.1: the DPoP scheme is for bound tokens; a bearer token stays bearer.
            raise InvalidToken("token is not bound to a DPoP key")
        return
    cnf = claims["cnf"]
    bound = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(bound, str):
        raise InvalidToken("invalid claim: cnf")  # a confirmation method we cannot check
    if dpop_jkt is None:
        # RFC 9449 §7.2: a bound token presented as a bearer token is a downgrade.
        raise InvalidToken("token is bound to a DPoP key: present it with a DPoP proof")
    if not hmac.compare_digest(bound, dpop_jkt):
        raise InvalidToken("DPoP proof key does not match the token")


def _audiences(aud: object) -> list[str]:
    """Return the ``aud`` claim as a list of strings (RFC 7519 §4.1.3)."""
    audiences = [aud] if isinstance(aud, str) else aud
    if (
        not isinstance(audiences, list)
        or not audiences
        or not all(isinstance(a, str) for a in audiences)
    ):
        raise InvalidToken("invalid claim: aud")
    return audiences


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    """Return claim ``name`` as a NumericDate (RFC 7519 §2)."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"invalid claim: {name}")
    return float(value)


def _header(segment: str) -> Mapping[str, Any]:
    """Return a token's header segment parsed, read-only (kept: one key's tokens share one header)."""
    try:
        return header_object(segment)
    except ValueError:
        raise InvalidToken("malformed token") from None


def _b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url (RFC 7515 §2), strictly."""
    try:
        return decode_segment(segment)
    except ValueError:
        raise InvalidToken("malformed token") from None


def _object_or_invalid(data: bytes) -> dict[str, Any]:
    """Parse a token's JSON object, refusing anything ambiguous."""
    try:
        return parse_object(data)
    except ValueError:
        raise InvalidToken("malformed token") from None
