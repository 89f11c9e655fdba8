"""The userinfo endpoint (OpenID Connect Core §5.3) with RFC 6750 bearer rules."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from falcon import testing

from tests.helpers import FORM, basic
from tests.oidc.flow import code_login, verified_id_token

USERINFO = "/api/v1/userinfo"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_get_and_post_answer_the_id_tokens_sub_and_the_scopes_claims(client: testing.TestClient) -> None:
    body = code_login(client).json
    got = client.simulate_get(USERINFO, headers=bearer(body["access_token"]))
    posted = client.simulate_post(
        USERINFO, body=urlencode({"access_token": body["access_token"]}), headers=FORM
    )
    expected = {
        "sub": verified_id_token(client, body["id_token"])["sub"],
        "name": "Test User",
        "email": "testuser@example.com",
        "email_verified": True,
    }
    for result in (got, posted):
        assert result.status_code == 200, result.text
        assert result.json == expected
        assert result.headers["Cache-Control"] == "no-store"


def test_only_the_granted_scopes_claims_are_released(client: testing.TestClient) -> None:
    token = code_login(client, scope="openid email").json["access_token"]
    result = client.simulate_get(USERINFO, headers=bearer(token))
    assert set(result.json) == {"sub", "email", "email_verified"}


def test_no_token_gets_a_bare_challenge(client: testing.TestClient) -> None:
    result = client.simulate_get(USERINFO)
    assert result.status_code == 401
    assert result.headers["WWW-Authenticate"] == 'Bearer realm="jwtauth"'  # RFC 6750 §3.1


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "e30.e30.e30"])
def test_a_bad_token_is_invalid_token(client: testing.TestClient, token: str) -> None:
    result = client.simulate_get(USERINFO, headers=bearer(token))
    assert result.status_code == 401 and result.json["error"] == "invalid_token"
    assert result.headers["WWW-Authenticate"].startswith('Bearer realm="jwtauth", error="invalid_token"')
    assert result.headers["Cache-Control"] == "no-store"


def test_a_token_without_openid_is_insufficient_scope(client: testing.TestClient) -> None:
    token = code_login(client, scope="read").json["access_token"]
    result = client.simulate_get(USERINFO, headers=bearer(token))
    assert result.status_code == 403 and result.json["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in result.headers["WWW-Authenticate"]


def test_a_client_credentials_token_names_no_user(client: testing.TestClient) -> None:
    token = client.simulate_post(
        "/api/v1/tokens", body="grant_type=client_credentials&scope=openid", headers=basic()
    ).json["access_token"]
    result = client.simulate_get(USERINFO, headers=bearer(token))
    assert result.status_code == 401 and result.json["error"] == "invalid_token"


def test_a_revoked_login_ends_userinfo(client: testing.TestClient) -> None:
    body = code_login(client).json
    revoked = client.simulate_post(
        "/api/v1/revoke", body=urlencode({"token": body["refresh_token"]}), headers=basic()
    )
    assert revoked.status_code == 200
    result = client.simulate_get(USERINFO, headers=bearer(body["access_token"]))
    assert result.status_code == 401 and result.json["error"] == "invalid_token"


def test_two_ways_at_once_or_the_url_are_refused(client: testing.TestClient) -> None:
    token = code_login(client).json["access_token"]
    both = client.simulate_post(
        USERINFO, body=urlencode({"access_token": token}), headers={**FORM, **bearer(token)}
    )
    assert both.status_code == 400 and both.json["error"] == "invalid_request"  # RFC 6750 §3.1
    in_url = client.simulate_get(USERINFO, query_string=urlencode({"access_token": token}))
    assert in_url.status_code == 400 and "WWW-Authenticate" in in_url.headers
    basic_scheme = client.simulate_get(USERINFO, headers=basic())
    assert basic_scheme.status_code == 400 and basic_scheme.json["error"] == "invalid_request"
