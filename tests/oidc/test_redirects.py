"""The empty-path redirect URI rule (RFC 3986 §6.2.3): `https://host` registered, `https://host/` sent."""

from __future__ import annotations

import pytest
from falcon import testing

from jwtauth.oauth.redirects import same_redirect_uri
from tests.authflow import authorize, code_from
from tests.helpers import README_QUERY, basic

SLASHED = "https://www.example.com/"


@pytest.mark.parametrize(
    ("sent", "registered", "same"),
    [
        ("https://www.example.com/", "https://www.example.com", True),
        ("https://www.example.com", "https://www.example.com/", True),
        ("https://www.example.com/?a=1", "https://www.example.com?a=1", True),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080", True),
        ("https://www.example.com//", "https://www.example.com", False),
        ("https://www.example.com/?", "https://www.example.com", False),
        ("https://www.example.com:443/", "https://www.example.com", False),  # no port rule
        ("https://WWW.example.com/", "https://www.example.com", False),  # no case rule
        ("com.example.app:/", "com.example.app:", False),  # http(s) only
    ],
)
def test_only_the_empty_path_is_normalised(sent: str, registered: str, same: bool) -> None:
    assert same_redirect_uri(sent, registered) is same


@pytest.mark.parametrize(("at_authorize", "at_token"), [(SLASHED, SLASHED), (SLASHED, None), (None, SLASHED)])
def test_the_demo_client_works_with_a_whatwg_built_redirect_uri(
    client: testing.TestClient, at_authorize: str | None, at_token: str | None
) -> None:
    query = {**README_QUERY}
    query.pop("redirect_uri")
    if at_authorize:
        query["redirect_uri"] = at_authorize
    result = authorize(client, query)
    assert result.headers["Location"].startswith(SLASHED + "?code=")
    body = f"grant_type=authorization_code&code={code_from(result)}"
    if at_token:
        body += f"&redirect_uri={at_token}"
    token = client.simulate_post("/api/v1/tokens", body=body, headers=basic())
    assert token.status_code == 200, token.text


def test_a_different_path_at_the_token_endpoint_is_still_refused(client: testing.TestClient) -> None:
    code = code_from(authorize(client, {**README_QUERY, "redirect_uri": SLASHED}))
    body = f"grant_type=authorization_code&code={code}&redirect_uri=https://www.example.com//"
    token = client.simulate_post("/api/v1/tokens", body=body, headers=basic())
    assert token.status_code == 400 and token.json["error"] == "invalid_grant"
