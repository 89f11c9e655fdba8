"""Attacks on /logout (RP-Initiated Logout §3, §6; OP conformance "RP-Initiated Logout" negatives).

Never an open redirect: every post_logout_redirect_uri variant that is not registered exactly is
refused on an error page. Forged, foreign and mistyped hints are refused. A cross-site GET or
POST without the confirmation form's CSRF token logs nobody out.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from falcon import testing
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.oidc.backchannel import LOGOUT_TYP, logout_claims
from jwtauth.tokens.claims import mint
from tests.helpers import MakeApp, client_like, login, token
from tests.oidc.browser import Browser, answer
from tests.oidc.flow import OPENID_QUERY

LOGGED_OUT = "https://www.example.com/logged-out"


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    other = client_like(
        settings, "other", redirect_uris=("https://other.example.com/cb",), post_logout_redirect_uris=()
    )
    return make_app(clients=(other,))


def signed_in(http: testing.TestClient) -> tuple[Browser, str]:
    browser = Browser(http)
    code = answer(browser.sign_in(OPENID_QUERY))["code"]
    id_token = token(http, {"grant_type": "authorization_code", "code": code}).json["id_token"]
    return browser, id_token


def logout(browser: Browser, method: str = "GET", **params: str) -> testing.Result:
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}
    if method == "GET":
        return browser.http.simulate_get("/logout", query_string=urlencode(params), headers=headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return browser.http.simulate_post("/logout", body=urlencode(params), headers=headers)


def still_signed_in(browser: Browser) -> bool:
    return "code" in answer(browser.get({**OPENID_QUERY, "prompt": "none"}))


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example.com/",
        LOGGED_OUT + "/",
        LOGGED_OUT + "x",
        LOGGED_OUT + "?next=https://evil.example.com",
        LOGGED_OUT + "#frag",
        "https://WWW.example.com/logged-out",
        "https://www.example.com:443/logged-out",
        "https://www.example.com/logged-out/../evil",
        "https://www.example.com",  # a redirect URI is not a post-logout URI
        "//evil.example.com/logged-out",
        "javascript:alert(1)",
    ],
)
def test_only_an_exactly_registered_post_logout_uri_is_followed(http: testing.TestClient, uri: str) -> None:
    browser, id_token = signed_in(http)
    result = logout(browser, id_token_hint=id_token, post_logout_redirect_uri=uri)
    assert result.status_code == 400 and "Location" not in result.headers
    assert still_signed_in(browser)


def test_a_post_logout_uri_needs_a_client(http: testing.TestClient) -> None:
    result = logout(Browser(http), post_logout_redirect_uri=LOGGED_OUT)
    assert result.status_code == 400 and "Location" not in result.headers


def test_another_clients_registration_does_not_count(http: testing.TestClient) -> None:
    result = logout(Browser(http), client_id="other", post_logout_redirect_uri=LOGGED_OUT)
    assert result.status_code == 400 and "Location" not in result.headers


def test_a_hint_for_one_client_with_another_client_id_is_refused(http: testing.TestClient) -> None:
    browser, id_token = signed_in(http)
    result = logout(browser, id_token_hint=id_token, client_id="other")
    assert result.status_code == 400 and still_signed_in(browser)


def test_forged_and_mistyped_hints_are_refused(
    http: testing.TestClient, keyring: KeyRing, tmp_path: Path
) -> None:
    browser, _ = signed_in(http)
    access = login(http, scope="openid").json["access_token"]
    key = keyring.signer()
    assert key is not None
    claims = logout_claims(
        issuer="http://testserver", client_id="testclient", sub="s", sid="x", now=0, jti="j"
    )
    logout_token = mint(claims, key, typ=LOGOUT_TYP)
    keyfolder.ensure(tmp_path / "k", "ES256", now=time.time(), retire_after=960)
    other_key = KeyRing(tmp_path / "k", retire_after=960).signer()
    assert other_key is not None
    foreign = mint({"iss": "http://testserver", "sub": "s", "aud": "testclient"}, other_key, typ="JWT")
    for hint in (access, logout_token, foreign, "not.a.jwt"):
        result = logout(browser, id_token_hint=hint, post_logout_redirect_uri=LOGGED_OUT)
        assert result.status_code == 400 and "Location" not in result.headers
    assert still_signed_in(browser)


def test_a_cross_site_get_or_post_without_the_form_logs_nobody_out(http: testing.TestClient) -> None:
    browser, _ = signed_in(http)
    page = logout(browser)
    assert page.status_code == 200 and 'name="logout"' in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "<script" not in page.text
    forged = logout(browser, "POST", logout="yes")
    assert forged.status_code == 400 and 'name="logout"' in forged.text
    assert still_signed_in(browser)


def test_another_users_hint_still_asks_to_confirm(
    http: testing.TestClient, settings: Settings, keyring: KeyRing, store: Any
) -> None:
    browser, _ = signed_in(http)
    key = keyring.signer()
    assert key is not None
    other_user = mint(
        {"iss": "http://testserver", "sub": "someone-else", "aud": "testclient"}, key, typ="JWT"
    )
    page = logout(browser, id_token_hint=other_user)
    assert page.status_code == 200 and 'name="logout"' in page.text
    assert still_signed_in(browser)


def test_a_store_outage_at_logout_is_a_503_page_not_a_500(
    http: testing.TestClient, settings: Settings, keyring: KeyRing
) -> None:
    import redis

    from tests.support import free_port

    browser, id_token = signed_in(http)
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    outage = Browser(testing.TestClient(create_app(settings, keyring, down)))
    outage.cookies = dict(browser.cookies)
    result = logout(outage, id_token_hint=id_token)
    assert result.status_code == 503 and "Location" not in result.headers
