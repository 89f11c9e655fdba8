"""Single sign-on at /authorize through TestClient: the session cookie, consent, prompt, max_age, hints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.store.sessions import SessionMarks
from tests.helpers import PEPPER, USER, Clock, MakeApp, basic, client_like, token
from tests.oidc.browser import SESSION, Browser, answer
from tests.oidc.flow import OPENID_QUERY, verified_id_token

SECOND_URI = "https://second.example.com/cb"
MINE_URI = "https://mine.example.com/cb"
SECOND = {**OPENID_QUERY, "client_id": "second", "redirect_uri": SECOND_URI}
MINE = {**OPENID_QUERY, "client_id": "mine", "redirect_uri": MINE_URI}


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    second = client_like(settings, "second", secret="secondsecret", redirect_uris=(SECOND_URI,))
    mine = client_like(settings, "mine", secret="minesecret", redirect_uris=(MINE_URI,), first_party=True)
    return make_app(clients=(second, mine))


def exchange(
    http: testing.TestClient, code: str, client: tuple[str, str] = ("testclient", "testpassword")
) -> Any:
    result = token(http, {"grant_type": "authorization_code", "code": code}, auth=client)
    assert result.status_code == 200, result.text
    return result.json


def test_signing_in_sets_a_signed_httponly_lax_session_cookie(http: testing.TestClient) -> None:
    browser = Browser(http)
    result = browser.sign_in(OPENID_QUERY)
    answer(result)
    cookie = result.cookies[SESSION]
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/"
    assert not cookie.secure  # http issuer in the suite; https below
    assert cookie.value.startswith("v2.")


def test_under_https_the_cookie_is_secure_and_host_bound(make_app: MakeApp) -> None:
    http = make_app(issuer="https://id.example.com")
    browser = Browser(http)
    result = browser.sign_in(OPENID_QUERY)
    cookie = result.cookies["__Host-jwtauth-session"]
    assert cookie.secure and cookie.http_only


def test_sso_across_two_clients_asks_consent_once_and_never_the_password(http: testing.TestClient) -> None:
    browser = Browser(http)
    first = exchange(http, answer(browser.sign_in(OPENID_QUERY))["code"])
    page = browser.get(SECOND)
    assert page.status_code == 200
    assert 'name="password"' not in page.text and 'name="username"' not in page.text
    assert "Signed in as" in page.text and page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    second = exchange(http, answer(browser.post())["code"], ("second", "secondsecret"))
    one = verified_id_token(http, first["id_token"])
    two = verified_id_token(http, second["id_token"], "second")
    assert one["sid"] == two["sid"] and one["sub"] == two["sub"]
    assert two["auth_time"] == one["auth_time"] and two["amr"] == ["pwd"]
    # Consent is remembered in the session: the second client now goes straight back.
    again = browser.get(SECOND)
    assert answer(again)["code"]


def test_an_id_token_issued_on_refresh_names_the_same_session(http: testing.TestClient) -> None:
    # Core §12.2 and Back-Channel Logout §2.1: the refreshed id_token carries the login's sid.
    browser = Browser(http)
    body = exchange(http, answer(browser.sign_in(OPENID_QUERY))["code"])
    original = verified_id_token(http, body["id_token"])
    for _ in range(2):  # from the first refresh token, then from its successor
        result = token(http, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
        assert result.status_code == 200, result.text
        body = result.json
        refreshed = verified_id_token(http, body["id_token"])
        assert refreshed["sid"] == original["sid"] and refreshed["auth_time"] == original["auth_time"]


def test_a_first_party_client_goes_straight_back(http: testing.TestClient) -> None:
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))
    assert answer(browser.get(MINE))["code"]


def test_a_wider_scope_asks_consent_again(http: testing.TestClient) -> None:
    browser = Browser(http)
    answer(browser.sign_in({**OPENID_QUERY, "scope": "openid"}))
    page = browser.get(OPENID_QUERY)
    assert page.status_code == 200 and "Signed in as" in page.text


def test_prompt_none_without_a_session_is_login_required(http: testing.TestClient) -> None:
    result = Browser(http).get({**OPENID_QUERY, "prompt": "none"})
    params = answer(result)
    assert params["error"] == "login_required" and params["state"] == "somestate"
    assert "code" not in params


def test_prompt_none_with_a_session(http: testing.TestClient) -> None:
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))
    assert answer(browser.get({**OPENID_QUERY, "prompt": "none"}))["code"]
    assert answer(browser.get({**SECOND, "prompt": "none"}))["error"] == "consent_required"
    assert (
        answer(browser.get({**OPENID_QUERY, "prompt": "none", "max_age": "0"}))["error"] == "login_required"
    )


def test_prompt_login_and_max_age_ask_the_password_and_move_auth_time(
    http: testing.TestClient, clock: Clock
) -> None:
    browser = Browser(http)
    first = verified_id_token(http, exchange(http, answer(browser.sign_in(OPENID_QUERY))["code"])["id_token"])
    clock.now += 120
    for query in ({**OPENID_QUERY, "prompt": "login"}, {**OPENID_QUERY, "max_age": "60"}):
        page = browser.get(query)
        assert page.status_code == 200 and 'name="password"' in page.text
        assert f'value="{USER}"' in page.text  # the signed-in user, pre-filled
    later = exchange(http, answer(browser.sign_in({**OPENID_QUERY, "max_age": "60"}))["code"])
    claims = verified_id_token(http, later["id_token"])
    assert claims["auth_time"] == first["auth_time"] + 120
    assert claims["sid"] != first["sid"]  # a password sign-in starts a new session


def test_login_hint_prefills_the_username(http: testing.TestClient) -> None:
    page = Browser(http).get({**OPENID_QUERY, "login_hint": "someone@example.com"})
    assert 'value="someone@example.com"' in page.text


def test_id_token_hint_of_the_signed_in_user_passes_prompt_none(http: testing.TestClient) -> None:
    browser = Browser(http)
    id_token = exchange(http, answer(browser.sign_in(OPENID_QUERY))["code"])["id_token"]
    assert answer(browser.get({**OPENID_QUERY, "prompt": "none", "id_token_hint": id_token}))["code"]


def test_an_ended_session_is_no_session(http: testing.TestClient, store: Any, settings: Settings) -> None:
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))
    copied = dict(browser.cookies)
    marks = SessionMarks(store, pepper=PEPPER, prefix=settings.redis_prefix, session_ttl=settings.session_ttl)
    marks.end_all(USER, now=2_000_000_000)
    browser.cookies = copied
    assert answer(browser.get({**OPENID_QUERY, "prompt": "none"}))["error"] == "login_required"


def test_the_code_exchange_still_works_for_the_old_flow(http: testing.TestClient) -> None:
    body = urlencode(
        {"grant_type": "authorization_code", "code": answer(Browser(http).sign_in(OPENID_QUERY))["code"]}
    )
    assert http.simulate_post("/api/v1/tokens", body=body, headers=basic()).status_code == 200
