"""Implicit and hybrid responses with id_tokens (Core §3.2, §3.3) and the Form Post Response Mode."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.web.pages import AUTO_SUBMIT
from tests.authflow import parse_page
from tests.helpers import MakeApp, client_like, introspect, token
from tests.oidc.browser import Browser, answer
from tests.oidc.flow import OPENID_QUERY, at_hash, verified_id_token

NONCE = OPENID_QUERY["nonce"]


@pytest.fixture
def http(client: testing.TestClient) -> testing.TestClient:
    return client


def front(http: testing.TestClient, response_type: str, **query: str) -> dict[str, str]:
    result = Browser(http).sign_in({**OPENID_QUERY, "response_type": response_type, **query})
    return answer(result, fragment=True)


def test_id_token_alone_carries_the_nonce_and_the_released_claims(http: testing.TestClient) -> None:
    params = front(http, "id_token")
    assert set(params) == {"id_token", "state", "iss"}
    claims = verified_id_token(http, params["id_token"])
    assert claims["nonce"] == NONCE and claims["amr"] == ["pwd"] and claims["sid"]
    assert claims["email"] == "testuser@example.com" and claims["name"] == "Test User"  # Core §5.4
    assert "at_hash" not in claims and "c_hash" not in claims


def test_id_token_token_binds_the_access_token(http: testing.TestClient) -> None:
    params = front(http, "id_token token")
    claims = verified_id_token(http, params["id_token"])
    assert claims["at_hash"] == at_hash(params["access_token"]) and claims["nonce"] == NONCE
    assert "email" not in claims  # an access token came with it: userinfo releases those
    assert params["token_type"] == "Bearer" and "refresh_token" not in params


@pytest.mark.parametrize("response_type", ["code id_token", "code id_token token", "code token"])
def test_hybrid_responses_bind_the_code_and_the_exchange_repeats_the_nonce(
    http: testing.TestClient, response_type: str
) -> None:
    params = front(http, response_type)
    if "id_token" in response_type:
        claims = verified_id_token(http, params["id_token"])
        assert claims["c_hash"] == at_hash(params["code"])  # same half-hash rule (ES256)
        assert ("at_hash" in claims) == ("token" in response_type.split())
    exchanged = token(http, {"grant_type": "authorization_code", "code": params["code"]})
    assert exchanged.status_code == 200, exchanged.text
    again = verified_id_token(http, exchanged.json["id_token"])
    assert again["nonce"] == NONCE and again["at_hash"] == at_hash(exchanged.json["access_token"])


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"nonce": None}, "invalid_request"),
        ({"scope": "read"}, "invalid_request"),
        ({"response_mode": "bogus"}, "invalid_request"),
        ({"response_mode": "query"}, "invalid_request"),
    ],
)
def test_id_token_requests_without_nonce_or_openid_are_refused(
    http: testing.TestClient, changes: dict[str, str | None], error: str
) -> None:
    query = {k: v for k, v in {**OPENID_QUERY, "response_type": "code id_token", **changes}.items() if v}
    params = answer(Browser(http).get(query), fragment=True)
    assert params["error"] == error and "id_token" not in params


def test_a_client_without_implicit_may_not_take_tokens_from_the_front_channel(
    make_app: MakeApp, settings: Settings
) -> None:
    codeonly = client_like(settings, "codeonly", grant_types=frozenset({"authorization_code"}))
    http = make_app(clients=(codeonly,))
    params = answer(
        Browser(http).get({**OPENID_QUERY, "client_id": "codeonly", "response_type": "code id_token"}),
        fragment=True,
    )
    assert params["error"] == "unauthorized_client"


def script_hash(html: str) -> str:
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert script == AUTO_SUBMIT
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def test_form_post_renders_a_self_submitting_form_under_a_strict_csp(http: testing.TestClient) -> None:
    result = Browser(http).sign_in(
        {**OPENID_QUERY, "response_type": "code id_token", "response_mode": "form_post"}
    )
    assert result.status_code == 200 and "Location" not in result.headers
    page = parse_page(result.text)
    fields = page.hidden
    assert set(fields) == {"code", "id_token", "state", "iss"}
    assert 'action="https://www.example.com"' in result.text and 'method="post"' in result.text
    policy = result.headers["Content-Security-Policy"]
    assert f"script-src {script_hash(result.text)};" in policy
    assert "form-action https://www.example.com;" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy and result.headers["Cache-Control"] == "no-store"
    assert verified_id_token(http, fields["id_token"])["nonce"] == NONCE


def test_form_post_carries_errors_too(http: testing.TestClient) -> None:
    result = Browser(http).get({**OPENID_QUERY, "prompt": "none", "response_mode": "form_post"})
    assert result.status_code == 200
    assert parse_page(result.text).hidden["error"] == "login_required"


def test_an_id_token_from_the_front_channel_is_no_access_token(http: testing.TestClient) -> None:
    id_token = front(http, "id_token")["id_token"]
    assert introspect(http, id_token).json == {"active": False}
    assert (
        http.simulate_get("/api/v1/userinfo", headers={"Authorization": f"Bearer {id_token}"}).status_code
        == 401
    )


def test_form_post_escapes_what_it_echoes(http: testing.TestClient) -> None:
    state = '"><script>alert(1)</script>'
    result = Browser(http).sign_in({**OPENID_QUERY, "response_mode": "form_post", "state": state})
    assert "<script>alert(1)" not in result.text
    assert parse_page(result.text).hidden["state"] == state
