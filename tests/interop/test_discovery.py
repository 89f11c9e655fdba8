"""Clients configured with nothing but the metadata URL (RFC 8414) find every endpoint themselves.

Authlib's OAuth client registry (the machinery behind its Flask, Django and Starlette clients)
loads the metadata with its own `load_server_metadata`; Authlib's OAuth2Session takes the
metadata document as its keyword arguments. No endpoint URL is written in this module.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from authlib.integrations.base_client import BaseApp, BaseOAuth, FrameworkIntegration, OAuth2Mixin
from authlib.integrations.requests_client import OAuth2Session

from tests.helpers import PASSWORD, USER
from tests.interop.useragent import sign_in_and_allow

pytestmark = pytest.mark.e2e

CLIENT_ID, SECRET = "testclient", "testpassword"
REDIRECT = "https://www.example.com"
WELL_KNOWN = "/.well-known/oauth-authorization-server"


class _NoFramework(FrameworkIntegration):
    """Authlib's framework hook, for a registry outside any web framework: no config to read."""

    @staticmethod
    def load_config(oauth: Any, name: str, params: Any) -> dict[str, Any]:
        return {}


class _RequestsApp(OAuth2Mixin, BaseApp):
    """A registry client over requests, composed exactly as Authlib's Flask client is."""

    client_cls = OAuth2Session


class _Registry(BaseOAuth):
    oauth2_client_cls = _RequestsApp
    framework_integration_cls = _NoFramework


@pytest.fixture
def registered(base: str) -> Any:
    """Return Authlib's remote app for jwtauth, registered with the metadata URL only."""
    oauth = _Registry()
    return oauth.register(
        "jwtauth",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        server_metadata_url=base + WELL_KNOWN,
        client_kwargs={"scope": "read", "code_challenge_method": "S256"},
    )


def test_registry_loads_the_metadata(registered: Any, base: str) -> None:
    metadata = registered.load_server_metadata()
    assert metadata["issuer"] == base
    assert "S256" in metadata["code_challenge_methods_supported"]


def test_registry_client_credentials(registered: Any) -> None:
    token = registered.fetch_access_token(grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "read"


def test_registry_authorization_code_with_pkce(registered: Any, base: str) -> None:
    started = registered.create_authorization_url(redirect_uri=REDIRECT)
    # Authlib made the verifier itself and took the endpoint from the metadata.
    assert started["url"].startswith(base + "/") and started["code_verifier"]
    token = registered.fetch_access_token(
        redirect_uri=REDIRECT,
        authorization_response=sign_in_and_allow(started["url"]),
        state=started["state"],
        code_verifier=started["code_verifier"],
    )
    assert token["scope"] == "read" and token["refresh_token"]


def test_session_built_from_the_metadata_document(base: str) -> None:
    metadata = requests.get(base + WELL_KNOWN, timeout=5).json()
    updates: list[dict[str, Any]] = []
    client = OAuth2Session(
        CLIENT_ID, SECRET, update_token=lambda token, **_: updates.append(token), **metadata
    )
    first = client.fetch_token(client.metadata["token_endpoint"], username=USER, password=PASSWORD)
    # ensure_active_token refreshes at the token_endpoint it was given in the metadata.
    client.token = {**first, "expires_at": int(time.time()) - 1}
    assert client.ensure_active_token() is True
    assert len(updates) == 1 and updates[0]["refresh_token"] != first["refresh_token"]
    fresh = updates[0]
    info = client.introspect_token(client.metadata["introspection_endpoint"], token=fresh["access_token"])
    assert info.json()["active"] is True
    revoked = client.revoke_token(client.metadata["revocation_endpoint"], token=fresh["refresh_token"])
    assert revoked.status_code == 200
    info = client.introspect_token(client.metadata["introspection_endpoint"], token=fresh["access_token"])
    assert info.json() == {"active": False}
