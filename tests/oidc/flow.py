"""The OpenID Connect code flow through TestClient, and id_token checks as a strict RP makes them."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

import jwt
from falcon import testing
from jwt.utils import base64url_encode

from tests.authflow import authorize, code_from
from tests.helpers import README_QUERY, basic

OPENID_QUERY = {**README_QUERY, "scope": "openid profile email read", "nonce": "n-0S6_WzA2Mj"}


def code_login(http: testing.TestClient, **query: str) -> testing.Result:
    """Sign in through the authorize page and exchange the code; return the token response."""
    code = code_from(authorize(http, {**OPENID_QUERY, **query}))
    body = urlencode({"grant_type": "authorization_code", "code": code})
    return http.simulate_post("/api/v1/tokens", body=body, headers=basic())


def verified_id_token(http: testing.TestClient, token: str, client_id: str = "testclient") -> dict[str, Any]:
    """Verify an id_token against /jwks the way a relying party does (Core §3.1.3.7)."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT"  # never at+jwt
    jwk = next(k for k in http.simulate_get("/jwks").json["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK(jwk).key
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        audience=client_id,
        issuer=http.simulate_get("/.well-known/openid-configuration").json["issuer"],
        options={
            "require": ["iss", "sub", "aud", "exp", "iat", "auth_time"],
            "verify_exp": False,
            "verify_iat": False,
        },
    )
    assert claims["azp"] == client_id
    return claims


def at_hash(access_token: str) -> str:
    """Return the ES256 at_hash of an access token (Core §3.1.3.6)."""
    return base64url_encode(hashlib.sha256(access_token.encode()).digest()[:16]).decode()
