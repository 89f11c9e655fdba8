"""Third-party verifiers check every token the server issues offline, from its published JWK Set.

PyJWT's PyJWKClient and joserfc each fetch /jwks (the jwks_uri of the metadata), pick the key by
`kid` and verify signature, issuer, audience and expiry; the header must say `typ: at+jwt`
(RFC 9068 §2.1). Tokens come from every grant, obtained with the client libraries.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt as jose_jwt
from joserfc.errors import BadSignatureError, SecurityWarning
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from oauthlib.oauth2 import MobileApplicationClient
from requests_oauthlib import OAuth2Session as OAuthlibSession

from jwtauth.cli import keyfolder
from tests.helpers import PASSWORD, USER
from tests.interop.useragent import sign_in_and_allow
from tests.support import running_server

pytestmark = pytest.mark.e2e

CLIENT_ID, SECRET = "testclient", "testpassword"
REDIRECT = "https://www.example.com"
AUDIENCE = "https://api.example.com"  # the demo client's first audience
GRANTS = ("client_credentials", "password", "refresh_token", "authorization_code", "implicit")


def issue_every_kind(metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return one token response per grant, each obtained through a client library."""
    endpoint = metadata["token_endpoint"]
    authlib = OAuth2Session(CLIENT_ID, SECRET, redirect_uri=REDIRECT, code_challenge_method="S256")
    issued = {
        "client_credentials": authlib.fetch_token(endpoint, grant_type="client_credentials"),
        "password": authlib.fetch_token(endpoint, username=USER, password=PASSWORD),
    }
    issued["refresh_token"] = authlib.refresh_token(
        endpoint, refresh_token=issued["password"]["refresh_token"]
    )
    verifier = generate_token(48)
    url, state = authlib.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    issued["authorization_code"] = authlib.fetch_token(
        endpoint, authorization_response=sign_in_and_allow(url), state=state, code_verifier=verifier
    )
    mobile = OAuthlibSession(client=MobileApplicationClient(CLIENT_ID), redirect_uri=REDIRECT)
    url, _ = mobile.authorization_url(metadata["authorization_endpoint"])
    issued["implicit"] = mobile.token_from_fragment(sign_in_and_allow(url))
    return issued


def verify_with_pyjwt(token: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Verify as a resource server using PyJWT would."""
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"], cache_keys=False).get_signing_key_from_jwt(token)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=[signing_key.algorithm_name],
        audience=AUDIENCE,
        issuer=metadata["issuer"],
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    return claims


def verify_with_joserfc(token: str, metadata: dict[str, Any], algorithm: str) -> dict[str, Any]:
    """Verify as a resource server using joserfc would."""
    key_set = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    decoded = jose_jwt.decode(token, key_set, algorithms=[algorithm])
    assert decoded.header["typ"] == "at+jwt"
    JWTClaimsRegistry(
        now=int(time.time()),
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


@pytest.fixture(scope="module")
def issued(metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return issue_every_kind(metadata)


@pytest.mark.parametrize("grant", GRANTS)
def test_pyjwt_verifies_every_grant(
    issued: dict[str, dict[str, Any]], metadata: dict[str, Any], grant: str
) -> None:
    claims = verify_with_pyjwt(issued[grant]["access_token"], metadata)
    expected_subject = CLIENT_ID if grant == "client_credentials" else USER
    assert claims["sub"] == expected_subject and claims["client_id"] == CLIENT_ID


@pytest.mark.parametrize("grant", GRANTS)
def test_joserfc_verifies_every_grant(
    issued: dict[str, dict[str, Any]], metadata: dict[str, Any], grant: str
) -> None:
    claims = verify_with_joserfc(issued[grant]["access_token"], metadata, "ES256")
    assert claims["scope"] in ("read write", "read")


def test_a_forged_token_fails_both(issued: dict[str, dict[str, Any]], metadata: dict[str, Any]) -> None:
    head, body, signature = issued["password"]["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    widened = base64.urlsafe_b64encode(json.dumps({**claims, "scope": "admin"}).encode()).rstrip(b"=")
    forged = f"{head}.{widened.decode()}.{signature}"
    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_pyjwt(forged, metadata)
    with pytest.raises(BadSignatureError):
        verify_with_joserfc(forged, metadata, "ES256")


@pytest.fixture(scope="module", params=["RS256", "PS256", "EdDSA"])
def other_algorithm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run a server whose only key uses another algorithm; yield (algorithm, metadata)."""
    directory = tmp_path_factory.mktemp(f"interop-{request.param}")
    keyfolder.ensure(directory / "keys", request.param, now=time.time(), retire_after=960)
    with running_server(keys_dir=directory / "keys", log_dir=directory) as server:
        url = server.base + "/.well-known/oauth-authorization-server"
        yield request.param, requests.get(url, timeout=5).json()


def test_every_signing_algorithm_verifies(other_algorithm: tuple[str, dict[str, Any]]) -> None:
    algorithm, metadata = other_algorithm
    token = OAuth2Session(CLIENT_ID, SECRET).fetch_token(
        metadata["token_endpoint"], username=USER, password=PASSWORD
    )["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    assert verify_with_pyjwt(token, metadata)["sub"] == USER
    # joserfc flags the JOSE name "EdDSA" as deprecated by RFC 9864 (in favour of "Ed25519") and
    # still verifies. The server keeps "EdDSA": PyJWT and most verifiers know no other name yet.
    advisory = (
        pytest.warns(SecurityWarning, match="RFC 9864") if algorithm == "EdDSA" else contextlib.nullcontext()
    )
    with advisory:
        assert verify_with_joserfc(token, metadata, algorithm)["sub"] == USER
