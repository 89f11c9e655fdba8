"""Authorization codes and PKCE: replay, races, theft by another client, redirect_uri games,
expiry, garbage, PKCE missing/wrong/downgraded/malformed/plain, code injection, escalation.

RFC 6749 §4.1.2, §4.1.3, §10.5, §10.6; RFC 7636; RFC 9700 §2.1.1, §4.5 (code injection)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from tests.authflow import authorize, code_from, redirect_params
from tests.helpers import (
    MULTI,
    MULTI_URIS,
    SPA,
    SPA_URI,
    Clock,
    assert_clean_error,
    call,
    pkce_pair,
    race,
    token,
)

README = {"response_type": "code", "client_id": "testclient", "redirect_uri": "https://www.example.com"}
INTROSPECT = "/api/v1/introspect"


def get_code(http: testing.TestClient, **query: str) -> str:
    """Run the authorize page as the demo user and return the code."""
    return code_from(authorize(http, {**README, **query}))


def pkce_code(http: testing.TestClient, **query: str) -> tuple[str, str]:
    """Return (code, verifier) of a flow with an S256 challenge."""
    verifier, challenge = pkce_pair()
    return get_code(http, code_challenge=challenge, code_challenge_method="S256", **query), verifier


def redeem(
    http: testing.TestClient,
    code: str,
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    **params: str,
) -> testing.Result:
    return token(http, {"grant_type": "authorization_code", "code": code, **params}, auth=auth)


def assert_invalid_grant(result: testing.Result, words: str = "") -> None:
    body = assert_clean_error(result, 400, "invalid_grant")
    assert words in body.get("error_description", ""), body


def active(http: testing.TestClient, access_token: str) -> bool:
    result = call(http, INTROSPECT, {"token": access_token})
    assert result.status_code == 200, result.text
    verdict: bool = result.json["active"]
    return verdict


# --- single use (RFC 6749 §4.1.2) ---------------------------------------------------------------


def test_a_replayed_code_fails_and_kills_what_the_first_redemption_got(http: testing.TestClient) -> None:
    code = get_code(http)
    first = redeem(http, code)
    assert first.status_code == 200, first.text
    assert active(http, first.json["access_token"])
    assert_invalid_grant(redeem(http, code), "already used")
    assert not active(http, first.json["access_token"])
    refresh = token(http, {"grant_type": "refresh_token", "refresh_token": first.json["refresh_token"]})
    assert_invalid_grant(refresh)


def test_concurrent_redemptions_yield_exactly_one_token(http: testing.TestClient) -> None:
    code = get_code(http)
    # Prove the client's secret once first: twelve threads in one process would otherwise all be
    # first proofs in flight together, and the pre-hash counter (accounts/client_limits.py) refuses
    # past ten of those; a served worker has only its threads in flight.
    assert_invalid_grant(redeem(http, "not-a-code"))
    results = race(lambda: redeem(http, code).status_code, threads=12)
    assert sorted(results) == [200] + [400] * 11


# --- another client's code (RFC 6749 §4.1.3) ------------------------------------------------------


def test_another_client_can_neither_redeem_nor_burn_a_code(http: testing.TestClient) -> None:
    code = get_code(http)
    assert_invalid_grant(redeem(http, code, auth=("other", "othersecret")))
    assert_invalid_grant(
        redeem(http, code, auth=("other", "othersecret"), redirect_uri=README["redirect_uri"])
    )
    assert redeem(http, code).status_code == 200


def test_a_public_clients_code_is_not_redeemable_by_a_confidential_one(http: testing.TestClient) -> None:
    code, verifier = pkce_code(http, client_id=SPA, redirect_uri=SPA_URI)
    assert_invalid_grant(redeem(http, code, code_verifier=verifier))
    assert redeem(http, code, auth=SPA, code_verifier=verifier).status_code == 200


def test_a_confidential_clients_code_is_not_redeemable_by_naming_its_id(http: testing.TestClient) -> None:
    """Naming a confidential client without its secret is no authentication at all."""
    code = get_code(http)
    assert_clean_error(redeem(http, code, auth="testclient"), 401, "invalid_client")
    assert redeem(http, code).status_code == 200


# --- redirect_uri (RFC 6749 §4.1.3) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    [
        "https://www.example.com//",
        "https://WWW.example.com",
        "https://www.example.com:443",
        "https://www.example.com#x",
        "https://www.example.com?x=1",
        "https://www.example.com.evil.com",
        "https://evil.com",
        "http://www.example.com",
        "https://www.example.com%2F",
        " https://www.example.com",
    ],
)
def test_a_mismatching_redirect_uri_is_refused_and_burns_nothing(http: testing.TestClient, sent: str) -> None:
    code = get_code(http)
    assert_invalid_grant(redeem(http, code, redirect_uri=sent), "redirect_uri")
    assert redeem(http, code, redirect_uri=README["redirect_uri"]).status_code == 200


def test_an_omitted_redirect_uri_that_was_required_burns_nothing(http: testing.TestClient) -> None:
    code = get_code(http, client_id=MULTI[0], redirect_uri=MULTI_URIS[1])
    assert_invalid_grant(redeem(http, code, auth=MULTI), "redirect_uri is required")
    assert redeem(http, code, auth=MULTI, redirect_uri=MULTI_URIS[1]).status_code == 200


def test_the_other_registered_uri_of_the_same_client_does_not_fit(http: testing.TestClient) -> None:
    code = get_code(http, client_id=MULTI[0], redirect_uri=MULTI_URIS[1])
    assert_invalid_grant(redeem(http, code, auth=MULTI, redirect_uri=MULTI_URIS[0]), "redirect_uri")


# --- expiry and garbage -----------------------------------------------------------------------------


def test_a_code_expires_after_its_lifetime(
    http: testing.TestClient, clock: Clock, sec_settings: Settings
) -> None:
    fresh, stale = get_code(http), get_code(http)
    clock.now += sec_settings.code_ttl - 1
    assert redeem(http, fresh).status_code == 200
    clock.now += 1
    assert_invalid_grant(redeem(http, stale), "invalid or expired")


@pytest.mark.parametrize(
    "code",
    [
        "A" * 43,
        "A" * 42,
        "A" * 44,
        "x",
        "A" * 42 + "=",
        "A" * 42 + "\u00e9",
        "../../../../etc/passwd",
        "' OR '1'='1",
        "*",
        "{c:*}",
        "jwtauth:*",
        "%00" * 10,
        "null",
    ],
)
def test_garbage_codes_are_refused_cleanly(http: testing.TestClient, state: Any, code: str) -> None:
    before = state()
    result = redeem(http, code)
    assert_clean_error(result, 400)
    assert result.json["error"] in {"invalid_grant", "invalid_request"}
    assert state() == before


# --- PKCE (RFC 7636 §4.6, RFC 9700 §2.1.1) --------------------------------------------------------


def test_the_right_verifier_redeems(http: testing.TestClient) -> None:
    code, verifier = pkce_code(http)
    assert redeem(http, code, code_verifier=verifier).status_code == 200


def test_a_missing_verifier_is_refused_and_burns_nothing(http: testing.TestClient) -> None:
    code, verifier = pkce_code(http)
    assert_invalid_grant(redeem(http, code), "code_verifier is required")
    assert redeem(http, code, code_verifier=verifier).status_code == 200


def test_a_wrong_verifier_is_refused_and_burns_nothing(http: testing.TestClient) -> None:
    """An attacker holding a stolen code but not the verifier cannot destroy the victim's code."""
    code, verifier = pkce_code(http)
    for _ in range(3):
        assert_invalid_grant(redeem(http, code, code_verifier=pkce_pair()[0]), "does not match")
    assert redeem(http, code, code_verifier=verifier).status_code == 200


def test_a_public_clients_stolen_code_cannot_be_burnt_with_guesses(http: testing.TestClient) -> None:
    code, verifier = pkce_code(http, client_id=SPA, redirect_uri=SPA_URI)
    assert_invalid_grant(redeem(http, code, auth=SPA))
    assert_invalid_grant(redeem(http, code, auth=SPA, code_verifier=pkce_pair()[0]))
    assert_invalid_grant(
        redeem(http, code, auth=SPA, code_verifier=verifier, redirect_uri="https://evil.example")
    )
    assert redeem(http, code, auth=SPA, code_verifier=verifier).status_code == 200


def test_a_verifier_from_another_flow_fits_neither_code(http: testing.TestClient) -> None:
    """Code injection (RFC 9700 §4.5): a stolen code replayed in the attacker's own session."""
    victim_code, victim_verifier = pkce_code(http)
    attacker_code, attacker_verifier = pkce_code(http)
    assert_invalid_grant(redeem(http, victim_code, code_verifier=attacker_verifier))
    assert_invalid_grant(redeem(http, attacker_code, code_verifier=victim_verifier))
    assert redeem(http, victim_code, code_verifier=victim_verifier).status_code == 200
    assert redeem(http, attacker_code, code_verifier=attacker_verifier).status_code == 200


def test_a_verifier_for_a_code_without_challenge_is_a_downgrade_and_burns_nothing(
    http: testing.TestClient,
) -> None:
    code = get_code(http)
    assert_invalid_grant(redeem(http, code, code_verifier=pkce_pair()[0]), "without code_challenge")
    assert redeem(http, code).status_code == 200


@pytest.mark.parametrize(
    "verifier",
    [
        "short",
        "a" * 42,
        "a" * 129,
        "a" * 42 + "+",
        "a" * 42 + "/",
        "a" * 42 + "=",
        "a" * 42 + " ",
        "a" * 42 + "\u00e9",
        "a" * 42 + "%",
    ],
)
def test_a_malformed_verifier_is_invalid_request_and_burns_nothing(
    http: testing.TestClient, verifier: str
) -> None:
    code, right = pkce_code(http)
    assert_clean_error(redeem(http, code, code_verifier=verifier), 400, "invalid_request")
    assert redeem(http, code, code_verifier=right).status_code == 200


def _authorize_error(http: testing.TestClient, query: Mapping[str, str]) -> dict[str, str]:
    page = http.simulate_get("/authorize", params={**README, "state": "s", **query})
    assert page.status_code == 303, page.text
    return redirect_params(page.headers["Location"])


@pytest.mark.parametrize(
    "query",
    [
        {"code_challenge": "x" * 43, "code_challenge_method": "plain"},
        {"code_challenge": pkce_pair()[1]},  # no method means plain (RFC 7636 §4.3): refused
        {"code_challenge": pkce_pair()[1], "code_challenge_method": "s256"},
        {"code_challenge": pkce_pair()[1], "code_challenge_method": "SHA256"},
        {"code_challenge_method": "S256"},
        {"code_challenge": pkce_pair()[1][:42], "code_challenge_method": "S256"},
        {"code_challenge": pkce_pair()[1] + "A", "code_challenge_method": "S256"},
        {"code_challenge": pkce_pair()[1] + "=", "code_challenge_method": "S256"},
        {"code_challenge": "A" * 42 + "B", "code_challenge_method": "S256"},  # not a digest's last char
        {"code_challenge": "A" * 42 + "+", "code_challenge_method": "S256"},
    ],
)
def test_plain_and_malformed_challenges_are_refused_at_authorize(
    http: testing.TestClient, query: dict[str, str]
) -> None:
    params = _authorize_error(http, query)
    assert params["error"] == "invalid_request" and params["state"] == "s"
    assert "code" not in params


def test_a_public_client_cannot_skip_pkce(http: testing.TestClient) -> None:
    params = _authorize_error(http, {"client_id": SPA, "redirect_uri": SPA_URI})
    assert params["error"] == "invalid_request"


# --- escalation at redemption ----------------------------------------------------------------------


def test_scope_cannot_grow_at_the_token_endpoint(http: testing.TestClient) -> None:
    code = get_code(http, scope="read")
    result = redeem(http, code, scope="read write")
    assert result.status_code == 200 and result.json["scope"] == "read"


def test_resource_cannot_change_at_the_token_endpoint_and_burns_nothing(http: testing.TestClient) -> None:
    code = get_code(http, resource="https://reports.example.com")
    assert_clean_error(redeem(http, code, resource="https://api.example.com"), 400, "invalid_target")
    assert_clean_error(redeem(http, code, resource="https://evil.example"), 400, "invalid_target")
    assert redeem(http, code, resource="https://reports.example.com").status_code == 200


def test_a_code_is_not_a_refresh_token_nor_an_access_token(http: testing.TestClient) -> None:
    code = get_code(http)
    assert_invalid_grant(token(http, {"grant_type": "refresh_token", "refresh_token": code}))
    result = call(http, INTROSPECT, {"token": code})
    assert result.status_code == 200 and result.json == {"active": False}
    assert redeem(http, code).status_code == 200
