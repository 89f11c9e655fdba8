"""Authlib's requests OAuth2Session, unmodified and with its defaults, against a real server.

Endpoints come from the server's metadata; the client secret is the demo fixture's.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from tests.helpers import PASSWORD, USER
from tests.interop.useragent import sign_in_and_allow

pytestmark = pytest.mark.e2e

CLIENT_ID, SECRET = "testclient", "testpassword"
REDIRECT = "https://www.example.com"


def session(metadata: dict[str, Any], **kwargs: Any) -> OAuth2Session:
    """Return an Authlib session for the demo client that knows the server's endpoints."""
    return OAuth2Session(CLIENT_ID, SECRET, token_endpoint=metadata["token_endpoint"], **kwargs)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials(metadata: dict[str, Any], method: str) -> None:
    client = session(metadata, token_endpoint_auth_method=method, scope="read")
    token = client.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "read"
    assert "refresh_token" not in token  # RFC 6749 §4.4.3
    # Authlib computed its own expiry from expires_in: it knows when to fetch a new token.
    assert isinstance(token["expires_at"], int) and token.is_expired() is False
    assert abs(token["expires_at"] - (time.time() + token["expires_in"])) < 5


def test_password_grant(metadata: dict[str, Any]) -> None:
    client = session(metadata, scope="read write")
    token = client.fetch_token(metadata["token_endpoint"], username=USER, password=PASSWORD)
    assert token["scope"] == "read write" and token["refresh_token"]


def test_wrong_password_is_an_oauth_error(metadata: dict[str, Any]) -> None:
    client = session(metadata)
    with pytest.raises(OAuthError) as caught:
        client.fetch_token(metadata["token_endpoint"], username=USER, password="wrong")
    assert caught.value.error == "invalid_grant"


def test_authorization_code_with_pkce(metadata: dict[str, Any]) -> None:
    client = session(metadata, redirect_uri=REDIRECT, scope="read", code_challenge_method="S256")
    verifier = generate_token(48)  # Authlib's own generator, as its framework clients use
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    assert "code_challenge_method=S256" in url
    callback = sign_in_and_allow(url)
    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier
    )
    assert token["scope"] == "read" and token["refresh_token"]


def test_expired_token_is_refreshed_automatically(metadata: dict[str, Any], base: str) -> None:
    updates: list[dict[str, Any]] = []

    def update_token(token: dict[str, Any], refresh_token: str | None = None, **_: Any) -> None:
        updates.append({**token, "old_refresh_token": refresh_token})

    client = session(metadata, update_token=update_token)
    first = client.fetch_token(metadata["token_endpoint"], username=USER, password=PASSWORD)
    # Pretend the access token ran out: the next request must refresh it on its own.
    client.token = {**first, "expires_at": int(time.time()) - 1}
    response = client.get(base + "/healthz")
    assert response.status_code == 200
    assert len(updates) == 1
    renewed = updates[0]
    assert renewed["old_refresh_token"] == first["refresh_token"]
    assert renewed["refresh_token"] != first["refresh_token"]  # rotated (RFC 9700 §4.14.2)
    assert response.request.headers["Authorization"] == f"Bearer {renewed['access_token']}"
    # The session now holds the new pair and keeps using it.
    assert client.token["refresh_token"] == renewed["refresh_token"]
    check = client.introspect_token(metadata["introspection_endpoint"], token=renewed["access_token"])
    assert check.json()["active"] is True


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_revoke_then_introspect(metadata: dict[str, Any], method: str) -> None:
    client = session(metadata, token_endpoint_auth_method=method)
    token = client.fetch_token(metadata["token_endpoint"], username=USER, password=PASSWORD)
    active = client.introspect_token(metadata["introspection_endpoint"], token=token["access_token"])
    assert active.status_code == 200
    assert active.json()["active"] is True and active.json()["sub"] == USER

    revoked = client.revoke_token(
        metadata["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200
    after = client.introspect_token(
        metadata["introspection_endpoint"], token=token["access_token"], token_type_hint="access_token"
    )
    assert after.json() == {"active": False}
    with pytest.raises(OAuthError) as caught:
        client.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert caught.value.error == "invalid_grant"
