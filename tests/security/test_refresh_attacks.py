"""Refresh tokens under attack: reuse, races, theft by another client, scope widening, garbage,
expiry, guessed family ids, a Redis dump (RFC 6749 §6, §10.4; RFC 9700 §4.14; RFC 6819 §5.2.2)."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from tests.authflow import authorize, code_from
from tests.helpers import (
    INTROSPECT,
    SPA,
    SPA_URI,
    Clock,
    assert_clean_error,
    call,
    login,
    pkce_pair,
    race,
    snapshot,
    token,
    tokens_of,
)

REFRESH = "refresh_token"


def rotate(
    http: testing.TestClient,
    refresh_token: str,
    *,
    auth: tuple[str, str] | str | None = ("testclient", "testpassword"),
    **params: str,
) -> testing.Result:
    return token(http, {"grant_type": REFRESH, "refresh_token": refresh_token, **params}, auth=auth)


def active(http: testing.TestClient, value: str) -> bool:
    result = call(http, INTROSPECT, {"token": value})
    assert result.status_code == 200, result.text
    verdict: bool = result.json["active"]
    return verdict


def assert_invalid_grant(result: testing.Result) -> None:
    assert_clean_error(result, 400, "invalid_grant")


# --- reuse (RFC 9700 §4.14.2) ----------------------------------------------------------------------


def test_reuse_after_rotation_kills_the_whole_family(
    http: testing.TestClient, clock: Clock, sec_settings: Settings
) -> None:
    access, first = tokens_of(login(http))
    access2, second = tokens_of(rotate(http, first))
    clock.now += sec_settings.refresh_grace_seconds + 1
    assert_invalid_grant(rotate(http, first))  # the thief, or the victim: nobody can tell
    assert_invalid_grant(rotate(http, second))  # the newest token dies too
    assert not active(http, access) and not active(http, access2)


def test_a_replay_within_grace_gets_the_same_successor_not_a_second_family(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http))
    a = tokens_of(rotate(http, first))[1]
    b = tokens_of(rotate(http, first))[1]
    assert a == b  # one successor: the lost response is recovered, nothing is duplicated
    assert rotate(http, a).status_code == 200


def test_an_older_generation_is_reuse_even_within_grace(http: testing.TestClient) -> None:
    _, g0 = tokens_of(login(http))
    _, g1 = tokens_of(rotate(http, g0))
    _, g2 = tokens_of(rotate(http, g1))
    assert_invalid_grant(rotate(http, g0))
    assert_invalid_grant(rotate(http, g2))


def test_concurrent_refreshes_mint_exactly_one_successor(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http))
    results = race(lambda: rotate(http, first), threads=10)
    statuses = [result.status_code for result in results]
    successors = [result.json[REFRESH] for result in results if result.status_code == 200]
    assert statuses == [200] * 10
    assert len(set(successors)) == 1


# --- another client (RFC 6749 §10.4: refresh tokens are bound to their client) -----------------------


def test_another_client_can_neither_use_nor_kill_a_refresh_token(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http))
    assert_invalid_grant(rotate(http, first, auth=("other", "othersecret")))
    assert_invalid_grant(rotate(http, first, auth=SPA))
    assert rotate(http, first).status_code == 200


def test_a_public_clients_token_needs_that_public_client(http: testing.TestClient) -> None:
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": SPA,
        "redirect_uri": SPA_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    code = code_from(authorize(http, query))
    params = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    _, spa_token = tokens_of(token(http, params, auth=SPA))
    assert_invalid_grant(rotate(http, spa_token))  # the confidential demo client
    assert rotate(http, spa_token, auth=SPA).status_code == 200


# --- scope and audience never widen (RFC 6749 §6, RFC 8707 §2.2) --------------------------------------


@pytest.mark.parametrize("scope", ["read write admin", "admin", "read  write", "READ", "read\twrite"])
def test_a_wider_or_odd_scope_is_refused_and_burns_nothing(http: testing.TestClient, scope: str) -> None:
    _, first = tokens_of(login(http, scope="read"))
    result = rotate(http, first, scope=scope)
    assert_clean_error(result, 400, "invalid_scope")
    assert rotate(http, first).status_code == 200


def test_scope_granted_once_cannot_be_regained_by_another_login_path(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http, scope="read"))
    assert_clean_error(rotate(http, first, scope="read write"), 400, "invalid_scope")
    result = rotate(http, first)
    assert result.status_code == 200 and result.json["scope"] == "read"


def test_a_narrowed_refresh_does_not_shrink_the_grant(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http))
    narrowed = rotate(http, first, scope="read")
    assert narrowed.json["scope"] == "read"
    assert rotate(http, narrowed.json[REFRESH]).json["scope"] == "read write"


@pytest.mark.parametrize(
    "resource", ["https://evil.example", "https://api.example.com/", "https://API.example.com"]
)
def test_a_foreign_resource_is_refused_and_burns_nothing(http: testing.TestClient, resource: str) -> None:
    _, first = tokens_of(login(http))
    assert_clean_error(rotate(http, first, resource=resource), 400, "invalid_target")
    assert rotate(http, first).status_code == 200


# --- garbage, guesses, expiry -------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "value",
    [
        "x",
        ".",
        "A" * 22 + ".",
        "." + "A" * 43,
        "A" * 22 + "." + "A" * 42,
        "A" * 22 + "." + "A" * 44,
        "A" * 22 + ".." + "A" * 43,
        "A" * 22 + "." + "A" * 43 + ".",
        "A" * 21 + "=." + "A" * 43,
        "*." + "*" * 43,
        "{f:x}." + "A" * 43,
        "A" * 5000,
        "\u00e9" * 22 + "." + "A" * 43,
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ],
)
def test_garbage_refresh_tokens_are_refused_and_write_nothing(
    http: testing.TestClient, state: Any, value: str
) -> None:
    _, first = tokens_of(login(http))
    before = state()
    assert_invalid_grant(rotate(http, value))
    assert state() == before
    assert rotate(http, first).status_code == 200


def test_a_missing_refresh_token_is_invalid_request(http: testing.TestClient) -> None:
    assert_clean_error(token(http, {"grant_type": REFRESH}), 400, "invalid_request")


def test_guessed_secrets_for_a_known_family_revoke_nothing(http: testing.TestClient) -> None:
    """Family ids appear in access tokens (fid): knowing one must give no power over the family."""
    access, first = tokens_of(login(http))
    family = first.split(".")[0]
    for _ in range(5):
        assert_invalid_grant(rotate(http, f"{family}.{_b64(secrets.token_bytes(32))}"))
    assert_invalid_grant(rotate(http, f"{family}.{'A' * 43}"))
    assert active(http, access)
    assert rotate(http, first).status_code == 200


def test_the_access_token_is_not_a_refresh_token_and_vice_versa(http: testing.TestClient) -> None:
    access, first = tokens_of(login(http))
    assert_invalid_grant(rotate(http, access))
    result = call(http, INTROSPECT, {"token": first})
    assert result.json["token_type"] == REFRESH  # never mistaken for an access token
    assert rotate(http, first).status_code == 200


def test_a_redis_dump_redeems_nothing(http: testing.TestClient, store: Any) -> None:
    """Everything stored is a digest or metadata: no stored string works as a token."""
    _, first = tokens_of(login(http))
    family = first.split(".")[0]
    values: list[str] = []
    for _, (kind, value) in snapshot(store).items():
        if kind == b"hash":
            values += [v.decode(errors="replace") for _, v in value]
        elif kind == b"string":
            values.append(value.decode(errors="replace"))
        elif kind in (b"list",):
            values += [v.decode(errors="replace") for v in value]
    assert values
    assert first not in values and first.split(".")[1] not in values
    for value in values:
        candidate = value if "." in value else f"{family}.{value}"
        assert rotate(http, candidate).status_code == 400
    assert rotate(http, first).status_code == 200


def test_idle_and_absolute_expiry_end_a_family(make_app: Any, clock: Clock, sec_settings: Settings) -> None:
    http = make_app(refresh_idle_ttl=100, refresh_absolute_ttl=250)
    _, idle = tokens_of(login(http))
    clock.now += 101
    assert_invalid_grant(rotate(http, idle))
    _, current = tokens_of(login(http))
    for _ in range(2):
        clock.now += 90
        current = tokens_of(rotate(http, current))[1]
    clock.now += 90  # 270 s after login: past the absolute lifetime although used within idle
    assert_invalid_grant(rotate(http, current))
