"""The password grant under attack: enumeration by message or timing, brute force against one
user and across many users from one address, huge and NUL-containing input (RFC 6749 §4.3.2,
§10.7; RFC 6819 §5.1.4.2.3)."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import pytest
from falcon import testing

from jwtauth.accounts.hashing import hash_secret
from jwtauth.app import create_app
from jwtauth.config.clients import User
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.helpers import (
    PASSWORD,
    USER,
    VICTIM,
    VICTIM_PASSWORD,
    Clock,
    assert_clean_error,
    call,
    login,
    snapshot,
    tokens_of,
)

TOKENS = "/api/v1/tokens"




def locked(result: testing.Result) -> bool:
    if result.status_code != 429:
        return False
    assert_clean_error(result, 429, "slow_down")
    assert int(result.headers["Retry-After"]) >= 1
    return True


# --- enumeration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [
        (USER, "wrong"),
        ("nobody@example.com", PASSWORD),
        ("TESTUSER@example.com", PASSWORD),  # usernames are exact: no case folding
        (" " + USER, PASSWORD),
        (USER + "\u200b", PASSWORD),
        (VICTIM, PASSWORD),  # another user's password
    ],
)
def test_one_answer_for_unknown_users_and_wrong_passwords(
    http: testing.TestClient, username: str, password: str
) -> None:
    result = login(http, username, password)
    body = assert_clean_error(result, 400, "invalid_grant", secrets_sent=[password])
    assert body == {"error": "invalid_grant", "error_description": "the username or password is not correct"}


def test_unknown_and_known_users_cost_the_same_scrypt(
    http: testing.TestClient, derives: list[tuple[int, int, int]]
) -> None:
    assert login(http, "warm-up", "x").status_code == 400  # builds the dummy once
    login(http)  # the client's secret is proven and memoised
    derives.clear()
    assert login(http, "nobody@example.com", PASSWORD).status_code == 400
    unknown = list(derives)
    derives.clear()
    assert login(http, USER, "wrong").status_code == 400
    assert derives == unknown and len(unknown) == 1


def test_the_default_checker_costs_unknown_users_like_configured_ones(
    sec_settings: Settings, keyring: KeyRing, store: Any, derives: list[tuple[int, int, int]]
) -> None:
    users = tuple(User(u.username, hash_secret("pw", log_n=11)) for u in sec_settings.users)
    http = testing.TestClient(create_app(dataclasses.replace(sec_settings, users=users), keyring, store))
    login(http, "nobody@example.com", "pw")
    login(http, USER, "wrong")
    assert {d for d in derives if d[0] != 10} == {(11, 8, 1)}  # (10: the client secret)


# --- brute force (RFC 6749 §4.3.2 MUST) ----------------------------------------------------------------


def test_one_user_locks_after_the_limit_even_with_the_right_password(http: testing.TestClient) -> None:
    for i in range(5):
        assert login(http, USER, f"guess{i}", remote_addr=f"10.0.0.{i}").status_code == 400
    # From yet another address, with the right password: the user is locked, not the address.
    assert locked(login(http, USER, PASSWORD, remote_addr="10.0.1.1"))
    assert tokens_of(login(http, VICTIM, VICTIM_PASSWORD, remote_addr="10.0.1.1"))


def test_one_address_locks_after_guessing_across_many_users(make_app: Any) -> None:
    # The password grant's address counter is per (client, address), with its own limit.
    http = make_app(client_max_failures=5)
    for i in range(5):
        assert (
            login(http, f"user{i}@example.com", "guess", remote_addr="10.9.9.9").status_code == 400
        )
    assert locked(login(http, VICTIM, VICTIM_PASSWORD, remote_addr="10.9.9.9"))
    assert login(http, VICTIM, VICTIM_PASSWORD, remote_addr="10.9.9.8").status_code == 200


def test_a_spoofed_x_forwarded_for_does_not_escape_the_address_limit(make_app: Any) -> None:
    http = make_app(client_max_failures=5)
    for i in range(5):
        result = call(
            http,
            TOKENS,
            {"grant_type": "password", "username": f"u{i}", "password": "x"},
            headers={"X-Forwarded-For": f"203.0.113.{i}", "Forwarded": f"for=203.0.113.{i}"},
            remote_addr="10.7.7.7",
        )
        assert result.status_code == 400
    assert locked(login(http, VICTIM, VICTIM_PASSWORD, remote_addr="10.7.7.7"))


def test_locked_attempts_cost_no_scrypt(
    http: testing.TestClient, derives: list[tuple[int, int, int]]
) -> None:
    for i in range(5):
        login(http, USER, f"guess{i}")
    derives.clear()
    assert locked(login(http, USER, PASSWORD, auth=("other", "othersecret")))
    assert derives == [(10, 8, 1)]  # the client's secret; never the user's password


def test_the_lock_lifts_when_the_window_ends(
    http: testing.TestClient, clock: Clock, sec_settings: Settings
) -> None:
    for i in range(5):
        login(http, USER, f"guess{i}")
    assert locked(login(http, USER, PASSWORD))
    clock.now += sec_settings.failure_window
    assert login(http, USER, PASSWORD, remote_addr="10.0.0.9").status_code == 200


def test_owning_an_account_does_not_reset_the_address_counter(make_app: Any) -> None:
    """The attacker logs into their own account between guesses at others: still counted."""
    http = make_app(client_max_failures=5)
    for i in range(4):
        assert (
            login(http, f"victim{i}@example.com", "guess", remote_addr="10.5.5.5").status_code == 400
        )
        assert login(http, USER, PASSWORD, remote_addr="10.5.5.5").status_code == 200
    assert login(http, "victim9@example.com", "guess", remote_addr="10.5.5.5").status_code == 400
    assert locked(login(http, USER, PASSWORD, remote_addr="10.5.5.5"))


def test_counters_keep_no_username_or_address_in_redis(http: testing.TestClient, store: Any) -> None:
    login(http, "secret-name@example.com", "x", remote_addr="198.51.100.77")
    dump = repr(snapshot(store)).encode()
    assert b"secret-name" not in dump and b"198.51.100.77" not in dump


# --- hostile input: refused before any hashing, counted nowhere -------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("x" * 257, PASSWORD),
        (USER, "x" * 1025),
        ("x" * 10_000, "y" * 5_000),
        ("", PASSWORD),
        (USER, ""),
    ],
)
def test_huge_or_empty_credentials_cost_nothing_and_count_nothing(
    http: testing.TestClient, state: Any, derives: list[tuple[int, int, int]], username: str, password: str
) -> None:
    login(http)  # memoise the client's secret
    before = state()
    derives.clear()
    result = login(http, username, password)
    assert_clean_error(result, 400, "invalid_request")
    assert derives == [] and state() == before


@pytest.mark.parametrize(
    "pairs",
    [
        [("username", USER + "\x00"), ("password", PASSWORD)],
        [("username", USER), ("password", PASSWORD + "\x00")],
        [("username", USER), ("password", "\x00" + PASSWORD)],
        [("username", USER), ("password", PASSWORD), ("password", "other")],
        [("username", USER), ("username", VICTIM), ("password", PASSWORD)],
    ],
)
def test_nul_and_repeated_credentials_are_refused_before_hashing(
    http: testing.TestClient, state: Any, derives: list[tuple[int, int, int]], pairs: list[tuple[str, str]]
) -> None:
    before = state()
    body = urlencode([("grant_type", "password"), *pairs])
    result = call(http, TOKENS, body)
    assert_clean_error(result, 400, "invalid_request", secrets_sent=[PASSWORD])
    assert derives == [] and state() == before


def test_a_unicode_password_is_neither_mangled_nor_normalised(make_app: Any, sec_settings: Settings) -> None:
    users = (*sec_settings.users, User("u@example.com", hash_secret("pässwörd ✓", log_n=10)))
    http = make_app(users=users)
    assert login(http, "u@example.com", "pässwörd ✓").status_code == 200
    assert login(http, "u@example.com", "pa\u0308sswo\u0308rd ✓").status_code == 400  # NFD
