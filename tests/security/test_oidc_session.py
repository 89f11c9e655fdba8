"""Attacks on the browser session and SSO (OpenID Foundation OP conformance negatives, Core §3.1.2.1).

Forged, foreign and ended cookies; consent pages posted for another session; id_token_hint
confusion (an access token, another client's id_token, another user's); prompt=none rules.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from falcon import testing
from jwt.utils import base64url_decode, base64url_encode
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.helpers import (
    VICTIM,
    VICTIM_PASSWORD,
    MakeApp,
    cheap_user,
    client_like,
    introspect,
    login,
    token,
)
from tests.oidc.browser import SESSION, Browser, answer
from tests.oidc.flow import OPENID_QUERY
from tests.support import free_port

SECOND_URI = "https://second.example.com/cb"
SECOND = {**OPENID_QUERY, "client_id": "second", "redirect_uri": SECOND_URI}


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    second = client_like(settings, "second", secret="secondsecret", redirect_uris=(SECOND_URI,))
    return make_app(clients=(second,), users=(cheap_user(VICTIM, VICTIM_PASSWORD),))


def signed_in(http: testing.TestClient) -> Browser:
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))
    return browser


def test_a_cookie_edited_to_another_user_is_no_session(http: testing.TestClient) -> None:
    browser = signed_in(http)
    version, payload, mac = browser.cookies[SESSION].split(".")
    body = base64url_decode(payload).replace(b"testuser@example.com", VICTIM.encode())
    browser.cookies[SESSION] = ".".join([version, base64url_encode(body).decode(), mac])
    assert answer(browser.get({**OPENID_QUERY, "prompt": "none"}))["error"] == "login_required"


def test_a_cookie_of_another_deployment_is_no_session(
    http: testing.TestClient, settings: Settings, store: Any, tmp_path: Path
) -> None:
    browser = signed_in(http)
    keyfolder.ensure(tmp_path / "other-keys", "ES256", now=time.time(), retire_after=960)
    other_keys = KeyRing(tmp_path / "other-keys", retire_after=960)
    other = Browser(testing.TestClient(create_app(settings, other_keys, store)))
    other.cookies = dict(browser.cookies)
    assert answer(other.get({**OPENID_QUERY, "prompt": "none"}))["error"] == "login_required"


def test_the_session_cookie_is_no_token(http: testing.TestClient) -> None:
    browser = signed_in(http)
    assert introspect(http, browser.cookies[SESSION]).json == {"active": False}


def test_a_consent_page_cannot_be_posted_for_another_session(http: testing.TestClient) -> None:
    victim = signed_in(http)
    victim.get(SECOND)
    assert "sid" in victim.fields
    # The user signs in as someone else in another tab; the open consent page must not grant for them.
    other_tab = Browser(http)
    other_tab.cookies = victim.cookies
    answer(other_tab.sign_in({**OPENID_QUERY, "prompt": "login"}, VICTIM, VICTIM_PASSWORD))
    result = victim.post()
    assert result.status_code == 400 and 'name="password"' in result.text
    assert "Location" not in result.headers


def test_a_consent_post_without_the_session_cookie_is_refused(http: testing.TestClient) -> None:
    browser = signed_in(http)
    browser.get(SECOND)
    browser.cookies.pop(SESSION)
    result = browser.post()
    assert result.status_code == 400 and "Location" not in result.headers


def test_a_forged_sid_field_breaks_the_csrf_binding(http: testing.TestClient) -> None:
    browser = signed_in(http)
    browser.get(SECOND)
    result = browser.post(sid="A" * 43)
    assert result.status_code == 400 and "Location" not in result.headers


def test_an_access_token_is_no_id_token_hint(http: testing.TestClient) -> None:
    access = login(http, scope="openid").json["access_token"]
    params = answer(Browser(http).get({**OPENID_QUERY, "id_token_hint": access}))
    assert params["error"] == "invalid_request" and "code" not in params


def test_another_clients_id_token_is_no_hint_for_this_one(http: testing.TestClient) -> None:
    browser = signed_in(http)
    code = answer(browser.get({**OPENID_QUERY, "prompt": "none"}))["code"]
    id_token = token(http, {"grant_type": "authorization_code", "code": code}).json["id_token"]
    assert answer(browser.get({**SECOND, "id_token_hint": id_token}))["error"] == "invalid_request"


def test_another_users_hint_with_prompt_none_is_login_required(http: testing.TestClient) -> None:
    victim = Browser(http)
    code = answer(victim.sign_in(OPENID_QUERY, VICTIM, VICTIM_PASSWORD))["code"]
    victims_token = token(http, {"grant_type": "authorization_code", "code": code}).json["id_token"]
    attacker = signed_in(http)
    query = {**OPENID_QUERY, "prompt": "none", "id_token_hint": victims_token}
    assert answer(attacker.get(query))["error"] == "login_required"


@pytest.mark.parametrize("prompt", ["none login", "none consent", "unknown"])
def test_bad_prompts_are_invalid_requests_at_the_redirect_uri(http: testing.TestClient, prompt: str) -> None:
    params = answer(signed_in(http).get({**OPENID_QUERY, "prompt": prompt}))
    assert params["error"] == "invalid_request" and params["state"] == "somestate"


def test_prompt_none_never_renders_a_page(http: testing.TestClient) -> None:
    result = Browser(http).get({**SECOND, "prompt": "none"})
    assert result.status_code == 303 and "<form" not in result.text


def test_a_store_outage_with_a_session_redirects_temporarily_unavailable(
    http: testing.TestClient, settings: Settings, keyring: KeyRing
) -> None:
    browser = signed_in(http)
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    outage = Browser(testing.TestClient(create_app(dataclasses.replace(settings), keyring, down)))
    outage.cookies = dict(browser.cookies)
    assert answer(outage.get(OPENID_QUERY))["error"] == "temporarily_unavailable"
