"""Authlib's OpenID Connect relying-party checks, unmodified, on our id_tokens and userinfo.

Authlib validates a code-flow id_token (authlib.oidc.core.CodeIDToken) the strict way: issuer,
audience, expiry, nonce, at_hash, azp and, with max_age, auth_time; keys come from /jwks.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

with warnings.catch_warnings():
    # Authlib's OIDC claim classes still sit on its deprecated authlib.jose (no change in 1.x).
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

from tests.interop.useragent import sign_in_and_allow

pytestmark = pytest.mark.e2e

CLIENT_ID, SECRET = "testclient", "testpassword"
REDIRECT = "https://www.example.com/"  # the WHATWG spelling of the demo's registered URI


def test_code_flow_id_token_and_userinfo(base: str) -> None:
    oidc = requests.get(base + "/.well-known/openid-configuration", timeout=5).json()
    client = OAuth2Session(
        CLIENT_ID, SECRET, redirect_uri=REDIRECT, scope="openid profile email", code_challenge_method="S256"
    )
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(
        oidc["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = sign_in_and_allow(url)
    token: dict[str, Any] = client.fetch_token(
        oidc["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier
    )
    keys = JsonWebKey.import_key_set(requests.get(oidc["jwks_uri"], timeout=5).json())
    claims = jwt.decode(
        token["id_token"],
        keys,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"values": [oidc["issuer"]]}},
        claims_params={"nonce": nonce, "client_id": CLIENT_ID, "access_token": token["access_token"]},
    )
    claims.validate(leeway=5)  # raises on a wrong iss, aud, exp, nonce, at_hash or azp
    info = client.get(oidc["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"] and info["email"] == "testuser@example.com"
    assert info["name"] == "Test User" and info["email_verified"] is True
