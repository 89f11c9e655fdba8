"""requests-oauthlib (with oauthlib's client classes), unmodified, against a real server.

OAUTHLIB_INSECURE_TRANSPORT is set by conftest.py (oauthlib_on_loopback): oauthlib refuses http://
otherwise, and the test server listens on loopback over plain http.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from oauthlib.oauth2 import (
    BackendApplicationClient,
    InvalidGrantError,
    LegacyApplicationClient,
    MobileApplicationClient,
    WebApplicationClient,
)
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.helpers import PASSWORD, USER
from tests.interop.useragent import sign_in_and_allow

pytestmark = pytest.mark.e2e

CLIENT_ID, SECRET = "testclient", "testpassword"
REDIRECT = "https://www.example.com"


def test_backend_application_client(metadata: dict[str, Any]) -> None:
    oauth = OAuth2Session(client=BackendApplicationClient(client_id=CLIENT_ID))
    token = oauth.fetch_token(metadata["token_endpoint"], auth=HTTPBasicAuth(CLIENT_ID, SECRET))
    assert token["token_type"] == "Bearer" and token["scope"] == ["read", "write"]
    assert "refresh_token" not in token


def test_backend_application_client_with_secret_in_body(metadata: dict[str, Any]) -> None:
    # The scope goes on the oauthlib client: that is what prepare_request_body sends.
    oauth = OAuth2Session(client=BackendApplicationClient(client_id=CLIENT_ID, scope=["read"]))
    token = oauth.fetch_token(
        metadata["token_endpoint"], client_id=CLIENT_ID, client_secret=SECRET, include_client_id=True
    )
    assert token["scope"] == ["read"]


def test_legacy_application_client_and_automatic_refresh(metadata: dict[str, Any], base: str) -> None:
    saved: list[dict[str, Any]] = []
    oauth = OAuth2Session(
        client=LegacyApplicationClient(client_id=CLIENT_ID),
        auto_refresh_url=metadata["token_endpoint"],
        auto_refresh_kwargs={"client_id": CLIENT_ID, "client_secret": SECRET},
        token_updater=saved.append,
    )
    token = oauth.fetch_token(
        metadata["token_endpoint"],
        username=USER,
        password=PASSWORD,
        client_id=CLIENT_ID,
        client_secret=SECRET,
    )
    assert token["refresh_token"]
    # oauthlib derives expires_at from expires_in (epoch seconds) and checks it before each call.
    oauth.token = {**token, "expires_at": time.time() - 10}
    response = oauth.get(base + "/healthz")
    assert response.status_code == 200
    assert len(saved) == 1 and saved[0]["refresh_token"] != token["refresh_token"]
    assert response.request.headers["Authorization"] == f"Bearer {saved[0]['access_token']}"


def test_legacy_application_client_wrong_password(metadata: dict[str, Any]) -> None:
    oauth = OAuth2Session(client=LegacyApplicationClient(client_id=CLIENT_ID))
    with pytest.raises(InvalidGrantError):
        oauth.fetch_token(
            metadata["token_endpoint"], username=USER, password="wrong", auth=HTTPBasicAuth(CLIENT_ID, SECRET)
        )


def test_web_application_client_with_pkce(metadata: dict[str, Any]) -> None:
    oauth = OAuth2Session(
        client=WebApplicationClient(CLIENT_ID), redirect_uri=REDIRECT, scope=["read"], pkce="S256"
    )
    url, _ = oauth.authorization_url(metadata["authorization_endpoint"])
    assert "code_challenge_method=S256" in url
    callback = sign_in_and_allow(url)
    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, client_secret=SECRET
    )
    assert token["scope"] == ["read"] and token["refresh_token"]
    assert oauth.authorized


def test_mobile_application_client_implicit(metadata: dict[str, Any]) -> None:
    oauth = OAuth2Session(client=MobileApplicationClient(CLIENT_ID), redirect_uri=REDIRECT, scope=["read"])
    url, _ = oauth.authorization_url(metadata["authorization_endpoint"])
    callback = sign_in_and_allow(url)
    token = oauth.token_from_fragment(callback)  # checks state, reads the fragment (RFC 6749 §4.2.2)
    assert token["token_type"] == "Bearer" and token["scope"] == ["read"]
    assert "refresh_token" not in token and oauth.authorized
