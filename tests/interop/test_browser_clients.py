"""The authorize page in Debian's Chromium, started from the URLs the client libraries build.

The client site (https://www.example.com) is not on the network here, and Playwright cannot
answer for the target of a redirect. So the callback URL is read from the 303 the browser got
(fragment included, for implicit), after checking that the browser set off to exactly that URL;
it goes back to the library as is.
"""

from __future__ import annotations

from typing import Any

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from oauthlib.oauth2 import WebApplicationClient
from playwright.sync_api import Page
from requests_oauthlib import OAuth2Session as OAuthlibSession

from tests.helpers import PASSWORD, USER

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CLIENT_ID, SECRET = "testclient", "testpassword"
REDIRECT = "https://www.example.com"


def sign_in_and_allow(page: Page, authorization_url: str) -> str:
    """Open the client's authorization URL, sign in as the demo user, return the callback URL."""
    response = page.goto(authorization_url)
    assert response is not None and response.status == 200
    page.get_by_label("Email or username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    with (
        page.expect_response(lambda r: r.request.method == "POST") as posted,
        page.expect_request(lambda r: r.url.startswith(REDIRECT)) as followed,
    ):
        page.get_by_role("button", name="Allow").click()
    assert posted.value.status == 303
    callback = posted.value.headers["location"]
    # The browser followed it (a fragment stays in the browser, never in the request).
    assert followed.value.url == callback.partition("#")[0]
    return callback


def test_authlib_code_flow_with_pkce(page: Page, metadata: dict[str, Any]) -> None:
    client = OAuth2Session(
        CLIENT_ID, SECRET, redirect_uri=REDIRECT, scope="read write", code_challenge_method="S256"
    )
    verifier = generate_token(48)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    callback = sign_in_and_allow(page, url)
    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier
    )
    assert token["scope"] == "read write" and token["refresh_token"]


def test_authlib_implicit_flow(page: Page, metadata: dict[str, Any]) -> None:
    client = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT, scope="read")
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], response_type="token")
    callback = sign_in_and_allow(page, url)
    token = client.token_from_fragment(callback, state)
    assert token["token_type"] == "Bearer" and token["scope"] == "read"
    assert "refresh_token" not in token


def test_requests_oauthlib_code_flow_with_pkce(page: Page, metadata: dict[str, Any]) -> None:
    oauth = OAuthlibSession(
        client=WebApplicationClient(CLIENT_ID), redirect_uri=REDIRECT, scope=["read"], pkce="S256"
    )
    url, _ = oauth.authorization_url(metadata["authorization_endpoint"])
    callback = sign_in_and_allow(page, url)
    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, client_secret=SECRET
    )
    assert token["scope"] == ["read"] and oauth.authorized
