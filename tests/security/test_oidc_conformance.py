"""Negative cases of the OpenID Foundation's OP conformance plans (Basic, Implicit, Hybrid, Config).

Each test names the conformance module it mirrors. Others live beside the flow they attack:
code reuse, request/claims parameters (test_oidc.py), sessions and hints (test_oidc_session.py),
RP-initiated logout (test_logout.py).
"""

from __future__ import annotations

import pytest
from falcon import testing

from tests.helpers import Clock
from tests.oidc.browser import Browser, answer
from tests.oidc.flow import OPENID_QUERY, verified_id_token

IMPLICIT = {**OPENID_QUERY, "response_type": "id_token"}


@pytest.mark.parametrize(
    "response_type", ["id_token", "id_token token", "code id_token", "code id_token token"]
)
def test_oidcc_ensure_request_without_nonce_fails(http: testing.TestClient, response_type: str) -> None:
    query = {k: v for k, v in {**OPENID_QUERY, "response_type": response_type}.items() if k != "nonce"}
    params = answer(Browser(http).get(query), fragment=True)
    assert params["error"] == "invalid_request" and "id_token" not in params


def test_oidcc_prompt_none_not_logged_in(http: testing.TestClient) -> None:
    for query in (OPENID_QUERY, IMPLICIT):
        fragment = query is IMPLICIT
        params = answer(Browser(http).get({**query, "prompt": "none"}), fragment=fragment)
        assert params["error"] == "login_required" and params["state"] == "somestate"


def test_oidcc_max_age_0_forces_a_new_sign_in_and_moves_auth_time(
    http: testing.TestClient, clock: Clock
) -> None:
    browser = Browser(http)
    first = verified_id_token(http, answer(browser.sign_in(IMPLICIT), fragment=True)["id_token"])
    clock.now += 5
    page = browser.get({**IMPLICIT, "max_age": "0"})
    assert page.status_code == 200 and 'name="password"' in page.text
    second = verified_id_token(
        http, answer(browser.sign_in({**IMPLICIT, "max_age": "0"}), fragment=True)["id_token"]
    )
    assert second["auth_time"] == first["auth_time"] + 5


def test_oidcc_prompt_login_shows_the_password_page_even_when_signed_in(http: testing.TestClient) -> None:
    browser = Browser(http)
    answer(browser.sign_in(OPENID_QUERY))
    page = browser.get({**OPENID_QUERY, "prompt": "login"})
    assert page.status_code == 200 and 'name="password"' in page.text


def test_oidcc_id_token_hint_of_another_session_user_with_prompt_none(http: testing.TestClient) -> None:
    signed_in = Browser(http)
    hint = answer(signed_in.sign_in(IMPLICIT), fragment=True)["id_token"]
    nobody = Browser(http)
    assert answer(nobody.get({**IMPLICIT, "prompt": "none", "id_token_hint": hint}), fragment=True)[
        "error"
    ] == ("login_required")


def test_oidcc_response_type_missing_is_an_error_at_the_redirect_uri(http: testing.TestClient) -> None:
    query = {k: v for k, v in OPENID_QUERY.items() if k != "response_type"}
    assert answer(Browser(http).get(query))["error"] == "invalid_request"


def test_oidcc_unsupported_response_mode_and_query_for_tokens_are_refused(http: testing.TestClient) -> None:
    for mode in ("query", "web_message"):
        params = answer(Browser(http).get({**IMPLICIT, "response_mode": mode}), fragment=True)
        assert params["error"] == "invalid_request" and "id_token" not in params


def test_oidcc_config_lists_what_is_built(http: testing.TestClient) -> None:
    meta = http.simulate_get("/.well-known/openid-configuration").json
    assert set(meta["prompt_values_supported"]) == {"none", "login", "consent", "select_account"}
    assert {"id_token", "code id_token token"} <= set(meta["response_types_supported"])
    assert "form_post" in meta["response_modes_supported"]
    assert meta["end_session_endpoint"].endswith("/logout") and meta["backchannel_logout_supported"] is True
