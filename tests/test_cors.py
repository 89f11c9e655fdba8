"""CORS (jwtauth/resources/cors.py): per client on token, userinfo, revocation; public documents open."""

from __future__ import annotations

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from tests.helpers import MakeApp, call, client_like, login

WEB = ("web", "websecret")
ORIGIN = "https://web.example.com"
EVIL = "https://evil.example.com"


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    web = client_like(settings, WEB[0], secret=WEB[1], allowed_origins=(ORIGIN,))
    return make_app(clients=(web,))


def preflight(http: testing.TestClient, path: str, origin: str) -> testing.Result:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "dpop",
    }
    return http.simulate_options(path, headers=headers)


@pytest.mark.parametrize("path", ["/api/v1/tokens", "/api/v1/userinfo", "/api/v1/revoke"])
def test_a_preflight_from_a_registered_origin_is_allowed(http: testing.TestClient, path: str) -> None:
    result = preflight(http, path, ORIGIN)
    assert result.status_code == 204
    assert result.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in result.headers["Access-Control-Allow-Methods"]
    assert "DPoP" in result.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in result.headers
    assert "Access-Control-Allow-Origin" not in preflight(http, path, EVIL).headers


def test_the_token_endpoint_answers_the_clients_own_origins_only(http: testing.TestClient) -> None:
    mine = call(
        http, "/api/v1/tokens", {"grant_type": "client_credentials"}, auth=WEB, headers={"Origin": ORIGIN}
    )
    assert mine.status_code == 200 and mine.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "WWW-Authenticate" in mine.headers["Access-Control-Expose-Headers"]
    assert "Origin" in mine.headers["Vary"]
    # The demo client registered no origin: the same origin gets nothing for its requests.
    other = call(http, "/api/v1/tokens", {"grant_type": "client_credentials"}, headers={"Origin": ORIGIN})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
    evil = call(
        http, "/api/v1/tokens", {"grant_type": "client_credentials"}, auth=WEB, headers={"Origin": EVIL}
    )
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_an_error_before_the_client_is_known_is_readable_by_registered_origins(
    http: testing.TestClient,
) -> None:
    bad = call(
        http,
        "/api/v1/tokens",
        {"grant_type": "client_credentials"},
        auth=("web", "wrong"),
        headers={"Origin": ORIGIN},
    )
    assert bad.status_code == 401 and bad.headers["Access-Control-Allow-Origin"] == ORIGIN
    evil = call(
        http,
        "/api/v1/tokens",
        {"grant_type": "client_credentials"},
        auth=("web", "wrong"),
        headers={"Origin": EVIL},
    )
    assert "Access-Control-Allow-Origin" not in evil.headers


def test_userinfo_answers_the_tokens_clients_origins(http: testing.TestClient) -> None:
    web_token = login(http, auth=WEB, scope="openid").json["access_token"]
    demo_token = login(http, scope="openid").json["access_token"]
    for bearer, allowed in ((web_token, True), (demo_token, False)):
        result = http.simulate_get(
            "/api/v1/userinfo", headers={"Authorization": f"Bearer {bearer}", "Origin": ORIGIN}
        )
        assert result.status_code == 200
        assert ("Access-Control-Allow-Origin" in result.headers) is allowed


@pytest.mark.parametrize("path", ["/jwks", "/.well-known/jwks.json", "/.well-known/openid-configuration"])
def test_public_documents_are_open_to_any_origin(http: testing.TestClient, path: str) -> None:
    assert http.simulate_get(path, headers={"Origin": EVIL}).headers["Access-Control-Allow-Origin"] == "*"
    assert preflight(http, path, EVIL).headers["Access-Control-Allow-Origin"] == "*"


def test_nothing_changes_without_an_origin_or_elsewhere(http: testing.TestClient) -> None:
    plain = call(http, "/api/v1/tokens", {"grant_type": "client_credentials"}, auth=WEB)
    assert not [h for h in plain.headers if h.lower().startswith("access-control")]
    page = http.simulate_get("/authorize", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in page.headers
