"""Access-token claims and signing: pure functions, time and randomness passed in."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jwt.algorithms import get_default_algorithms
from jwt.utils import base64url_encode

from jwtauth.keys import KeyRecord

# RFC 9068 §2.1: the media type of JWT access tokens goes in `typ`.
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105  # a media type, not a secret


def access_claims(
    *,
    issuer: str,
    subject: str,
    client_id: str,
    audience: str,
    scope: Sequence[str],
    now: int,
    ttl: int,
    jti: str,
    family_id: str | None = None,
    auth_time: int | None = None,
    jkt: str | None = None,
) -> dict[str, Any]:
    """Return the claims of an RFC 9068 access token (DPoP-bound when `jkt` is given)."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": now + ttl,
        "iat": now,
        "jti": jti,
        "client_id": client_id,
        "scope": " ".join(scope),
    }
    if auth_time is not None:
        claims["auth_time"] = auth_time  # RFC 9068 §2.2.1
    if family_id is not None:
        # A reference to the refresh family, never its secret: introspection reports the token
        # inactive once the family is revoked (RFC 9700 §4.14.2).
        claims["fid"] = family_id
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}  # RFC 9449 §6.1: the thumbprint of the client's DPoP key
    return claims


# PyJWT's signers (stateless): ES256 raw r||s (RFC 7518 §3.4), RS256, PS256, EdDSA (RFC 8037).
_SIGNERS = get_default_algorithms()


def mint(claims: dict[str, Any], key: KeyRecord, typ: str = ACCESS_TOKEN_TYP) -> str:
    """Sign claims with a loaded key; the header carries kid and `typ` (at+jwt by default).

    The JWS compact serialization (RFC 7515 §7.1) is built here, byte for byte what
    `jwt.encode` builds (sorted header members, compact JSON), without its per-call checks
    and header re-encoding: on the token endpoint's hot path they cost a third of the signature.
    """
    payload = base64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = _header_segment(key.alg, key.kid, typ) + b"." + payload
    signature = _SIGNERS[key.alg].sign(signing_input, key.private_key)
    return (signing_input + b"." + base64url_encode(signature)).decode("ascii")


@functools.lru_cache(maxsize=64)
def _header_segment(alg: str, kid: str, typ: str) -> bytes:
    """Return the encoded protected header of a key: a pure function, so memoized."""
    header = {"alg": alg, "kid": kid, "typ": typ}
    return base64url_encode(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())


# Every token issued within the same second expires in the same second: a pure function, so
# memoized (datetime's formatting costs a microsecond per response).
@functools.lru_cache(maxsize=16)
def iso8601(epoch: int) -> str:
    """Format an epoch second as ISO 8601 UTC (the old server's `expires_at`)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class TokenBody(dict[str, Any]):
    """A §5.1 response body that also carries its access token's identifiers (`ids`).

    The audit line names the token by sub, jti and fid (resources/audit.py); the claims it
    was signed from are at hand here, so nothing decodes the token again to find them.
    """

    ids: dict[str, str]


# The claims that identify an access token in the audit line, never anything it grants.
TOKEN_IDS = ("sub", "jti", "fid")


def token_response(
    access_token: str, claims: dict[str, Any], refresh_token: str | None = None
) -> TokenBody:
    """Return the RFC 6749 §5.1 response body (plus `expires_at`)."""
    body = TokenBody({
        "access_token": access_token,
        # RFC 9449 §5: a token bound to a DPoP key is of type DPoP.
        "token_type": "DPoP" if "cnf" in claims else "Bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "expires_at": iso8601(claims["exp"]),
        "scope": claims["scope"],
    })
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    body.ids = {name: claims[name] for name in TOKEN_IDS if isinstance(claims.get(name), str)}
    return body
