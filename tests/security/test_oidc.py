"""OpenID Connect negative cases (OpenID Foundation OP conformance plans: Basic, Config).

An id_token is never an access token and an access token never an id_token; a code used twice
gives no second id_token; request objects are refused in the protocol's own words (Core §6).
"""

from __future__ import annotations

from collections.abc import Mapping

import jwt
import pytest
from falcon import testing

from jwtauth.verify import InvalidToken, Verifier
from tests.authflow import authorize, code_from, open_page, redirect_params, submit
from tests.helpers import API, ISSUER, README_QUERY, assert_clean_error, call, token
from tests.oidc.flow import OPENID_QUERY, code_login, verified_id_token


def jwks_verifier(http: testing.TestClient) -> Verifier:
    def fetch(url: str) -> tuple[bytes, Mapping[str, str]]:
        result = http.simulate_get("/jwks")
        return result.content, dict(result.headers)

    return Verifier(issuer=ISSUER, audience=API, jwks_uri=ISSUER + "/jwks", fetch=fetch)


def test_an_id_token_is_no_access_token_anywhere(http: testing.TestClient) -> None:
    body = code_login(http).json
    id_token = body["id_token"]
    assert call(http, "/api/v1/introspect", {"token": id_token}).json == {"active": False}
    with pytest.raises(InvalidToken):
        jwks_verifier(http).verify(id_token)
    userinfo = http.simulate_get("/api/v1/userinfo", headers={"Authorization": f"Bearer {id_token}"})
    assert userinfo.status_code == 401 and userinfo.json["error"] == "invalid_token"
    # The genuine access token of the same exchange passes all three.
    assert call(http, "/api/v1/introspect", {"token": body["access_token"]}).json["active"] is True


def test_an_access_token_is_no_id_token(http: testing.TestClient) -> None:
    access = code_login(http).json["access_token"]
    assert jwt.get_unverified_header(access)["typ"] == "at+jwt"
    with pytest.raises((AssertionError, jwt.InvalidTokenError)):
        verified_id_token(http, access)


def test_a_second_use_of_a_code_issues_no_second_id_token(http: testing.TestClient) -> None:
    code = code_from(authorize(http, OPENID_QUERY))
    first = token(http, {"grant_type": "authorization_code", "code": code})
    assert "id_token" in first.json
    second = token(http, {"grant_type": "authorization_code", "code": code})
    assert "id_token" not in second.text
    assert_clean_error(second, 400, "invalid_grant")


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://rp.example/req.jwt"}, "request_uri_not_supported"),
        ({"nonce": "n" * 513}, "invalid_request"),
    ],
)
def test_refused_parameters_go_back_in_the_protocols_words(
    http: testing.TestClient, extra: dict[str, str], error: str
) -> None:
    page = open_page(http, {**OPENID_QUERY, "state": "st", **extra})
    assert page.result.status_code == 303
    params = redirect_params(page.result.headers["Location"])
    assert params["error"] == error and params["state"] == "st" and params["iss"] == ISSUER


def test_the_claims_parameter_is_ignored_not_obeyed(http: testing.TestClient) -> None:
    # Core §5.5: an OP that does not support `claims` ignores it (discovery says false).
    claims = '{"id_token":{"email":{"essential":true}},"userinfo":{"phone_number":null}}'
    body = code_login(http, claims=claims).json
    assert "email" not in verified_id_token(http, body["id_token"])
    assert http.simulate_get("/.well-known/openid-configuration").json["claims_parameter_supported"] is False


def test_a_nonce_cannot_be_swapped_between_page_and_post(http: testing.TestClient) -> None:
    page = open_page(http, OPENID_QUERY)
    result = submit(http, page, changes={"nonce": "attacker-nonce"})
    assert result.status_code == 400 and "Location" not in result.headers  # CSRF binds the nonce


def test_discovery_is_a_real_oidc_document(http: testing.TestClient) -> None:
    oidc = http.simulate_get("/.well-known/openid-configuration").json
    oauth = http.simulate_get("/.well-known/oauth-authorization-server").json
    assert oidc == oauth  # one set of facts (RFC 8414 §3 and Discovery §3 agree)
    for member in ("userinfo_endpoint", "id_token_signing_alg_values_supported", "subject_types_supported"):
        assert oidc[member], member
    assert {"openid", "profile", "email", "offline_access"} <= set(oidc["scopes_supported"])
    assert oidc["id_token_signing_alg_values_supported"] == ["ES256"]
    assert "sub" in oidc["claims_supported"] and oidc["frontchannel_logout_supported"] is False


def test_the_readme_flow_without_openid_is_untouched(http: testing.TestClient) -> None:
    result = token(
        http, {"grant_type": "authorization_code", "code": code_from(authorize(http, README_QUERY))}
    )
    assert result.status_code == 200 and "id_token" not in result.json
