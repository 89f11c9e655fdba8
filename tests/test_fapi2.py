"""The FAPI 2.0 Security Profile per client (profile = "fapi2"): the whole flow as the profile wants it."""

from __future__ import annotations

from typing import Any

import pytest
from falcon import testing

from jwtauth.resources import paths
from tests.assertionkit import ClientKey, key_client, params
from tests.authflow import open_page, redirect_params, submit
from tests.dpopkit import DPoPKey
from tests.helpers import ISSUER, Clock, MakeApp, assert_clean_error, call, claims_of, pkce_pair

RP = "https://rp.example.com/cb"
KEY = ClientKey()


@pytest.fixture
def http(make_app: MakeApp) -> testing.TestClient:
    fapi = key_client(
        "bank", KEY.jwks(), profile="fapi2", grant_types=["authorization_code", "refresh_token"]
    )
    return make_app(clients=(fapi,), code_ttl=300)  # the operator's longer code lifetime does not apply


def fapi_code(http: testing.TestClient, clock: Clock, dpop: DPoPKey) -> tuple[str, str, Any]:
    """Push (private_key_jwt + PKCE), sign in, and return (code, verifier, the redirect's answer)."""
    verifier, challenge = pkce_pair()
    pushed = {
        "response_type": "code",
        "redirect_uri": RP,
        "scope": "read",
        "state": "st",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "dpop_jkt": dpop.jkt,
    }
    result = call(http, paths.PAR, params(KEY.assertion("bank", now=clock.now), **pushed), auth=None)
    assert result.status_code == 201, result.text
    page = open_page(http, {"client_id": "bank", "request_uri": result.json["request_uri"]})
    answer = redirect_params(submit(http, page).headers["Location"])
    return answer["code"], verifier, answer


def redeem(http: testing.TestClient, clock: Clock, dpop: DPoPKey | None, **body: str) -> testing.Result:
    headers = {"DPoP": dpop.proof(iat=clock.now)} if dpop else {}
    return call(
        http, paths.TOKEN, params(KEY.assertion("bank", now=clock.now), **body), auth=None, headers=headers
    )


def test_the_fapi2_flow_issues_dpop_bound_tokens(http: testing.TestClient, clock: Clock) -> None:
    dpop = DPoPKey()
    code, verifier, answer = fapi_code(http, clock, dpop)
    assert answer["iss"] == ISSUER and answer["state"] == "st"  # RFC 9207
    result = redeem(http, clock, dpop, grant_type="authorization_code", code=code, code_verifier=verifier)
    assert result.status_code == 200, result.text
    assert result.json["token_type"] == "DPoP"
    assert claims_of(result.json["access_token"])["cnf"] == {"jkt": dpop.jkt}
    refreshed = redeem(
        http, clock, dpop, grant_type="refresh_token", refresh_token=result.json["refresh_token"]
    )
    assert refreshed.status_code == 200 and refreshed.json["token_type"] == "DPoP"


def test_codes_live_at_most_60_seconds(http: testing.TestClient, clock: Clock) -> None:
    dpop = DPoPKey()
    code, verifier, _ = fapi_code(http, clock, dpop)
    clock.now += 61
    late = redeem(http, clock, dpop, grant_type="authorization_code", code=code, code_verifier=verifier)
    assert_clean_error(late, 400, "invalid_grant")


def test_tokens_need_a_dpop_proof(http: testing.TestClient, clock: Clock) -> None:
    dpop = DPoPKey()
    code, verifier, _ = fapi_code(http, clock, dpop)
    bearer = redeem(http, clock, None, grant_type="authorization_code", code=code, code_verifier=verifier)
    assert_clean_error(bearer, 400, "invalid_request")
    assert (
        redeem(
            http, clock, dpop, grant_type="authorization_code", code=code, code_verifier=verifier
        ).status_code
        == 200
    )
