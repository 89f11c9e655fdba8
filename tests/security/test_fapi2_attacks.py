"""A FAPI 2.0 client (profile = "fapi2") cannot be talked out of the profile: no plain /authorize,
no secret, no implicit, no PKCE-less or redirect-less push, no token endpoint audience."""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from jwtauth.config.reader import ConfigError
from jwtauth.resources import paths
from tests.assertionkit import ClientKey, key_client, params
from tests.authflow import redirect_params
from tests.helpers import ISSUER, Clock, MakeApp, assert_clean_error, call, cheap_hash, pkce_pair

RP = "https://rp.example.com/cb"
KEY = ClientKey()


@pytest.fixture
def http(make_app: MakeApp) -> testing.TestClient:
    fapi = key_client(
        "bank", KEY.jwks(), profile="fapi2", grant_types=["authorization_code", "refresh_token"]
    )
    return make_app(clients=(fapi,))


def pushed(**changes: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    body = {
        "response_type": "code",
        "redirect_uri": RP,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return {k: v for k, v in {**body, **changes}.items() if v}


def test_a_plain_authorize_request_is_refused(http: testing.TestClient) -> None:
    query = {"client_id": "bank", "redirect_uri": RP, "state": "s", **pushed()}
    result = http.simulate_get(paths.AUTHORIZE, params=query)
    answer = redirect_params(result.headers["Location"])
    assert answer["error"] == "invalid_request" and answer["iss"] == ISSUER and "code" not in answer


def test_a_secret_is_refused(http: testing.TestClient, store: Any) -> None:
    for auth in (("bank", "anything"), "bank"):
        assert_clean_error(call(http, paths.PAR, pushed(), auth=auth), 401, "invalid_client")


def test_a_secret_cannot_even_be_configured() -> None:
    with pytest.raises(ConfigError):
        key_client("bank", None, profile="fapi2", secret_hash=cheap_hash("s"))


def test_implicit_is_refused_at_the_push_and_in_the_config(http: testing.TestClient, clock: Clock) -> None:
    body = params(KEY.assertion("bank", now=clock.now), **pushed(response_type="token"))
    assert_clean_error(call(http, paths.PAR, body, auth=None), 400, "unauthorized_client")
    with pytest.raises(ConfigError, match="fapi2 refuses implicit"):
        key_client("bank", KEY.jwks(), profile="fapi2", grant_types=["authorization_code", "implicit"])


def test_a_pkce_less_push_is_refused(http: testing.TestClient, clock: Clock) -> None:
    body = params(KEY.assertion("bank", now=clock.now), **pushed(code_challenge="", code_challenge_method=""))
    assert_clean_error(call(http, paths.PAR, body, auth=None), 400, "invalid_request")


def test_a_push_without_redirect_uri_is_refused(http: testing.TestClient, clock: Clock) -> None:
    body = params(KEY.assertion("bank", now=clock.now), **pushed(redirect_uri=""))
    assert_clean_error(call(http, paths.PAR, body, auth=None), 400, "invalid_request")
