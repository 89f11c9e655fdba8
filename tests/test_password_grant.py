"""HTTP tests of the password grant (RFC 6749 §4.3): tokens, input limits, brute-force lockout."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.store import FailureLimiter
from tests.helpers import (
    API,
    FORM,
    PASSWORD,
    PEPPER,
    REPORTS,
    TOKENS,
    USER,
    Clock,
    ScryptCounter,
    assert_error,
    basic,
    cheap_user,
    claims_of,
    client_like,
    login,
    refresh,
    tokens_of,
)
from tests.helpers import build_app as make_app

WINDOW = 300






@pytest.fixture
def http(settings: Settings, keyring: KeyRing, store: Any, clock: Clock) -> testing.TestClient:
    """An app with max_failures=3 and two quick-to-check users, alice and bob."""
    users = (cheap_user("alice", "alice-pw"), cheap_user("bob", "bob-pw"))
    limits = {"max_failures": 3, "client_max_failures": 3, "failure_window": WINDOW}
    return make_app(settings, keyring, store, users=users, clock=clock, **limits)


def test_old_readme_curl_returns_an_access_and_a_refresh_token(client: testing.TestClient) -> None:
    # curl -u testclient:testpassword localhost:8000/api/v1/tokens/ \
    #   -d 'grant_type=password&username=testuser@example.com&password=testpassword'
    result = client.simulate_post(
        "/api/v1/tokens/",
        body="grant_type=password&username=testuser@example.com&password=testpassword",
        headers=basic(),
    )
    access, refresh_token = tokens_of(result)
    assert result.headers["Cache-Control"] == "no-store"
    body = result.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "read write"
    claims = claims_of(access)
    assert (claims["sub"], claims["client_id"], claims["aud"]) == (USER, "testclient", API)
    assert claims["scope"] == "read write"
    assert claims["iat"] - 1 <= claims["auth_time"] <= claims["iat"]  # the login just happened
    # The access token names its refresh family (never the secret) for revocation.
    family_id, _, secret = refresh_token.partition(".")
    assert claims["fid"] == family_id and secret not in access


def test_client_authentication_in_the_body_works_too(client: testing.TestClient) -> None:
    body = (
        "grant_type=password&username=testuser%40example.com&password=testpassword"
        "&client_id=testclient&client_secret=testpassword"
    )
    result = client.simulate_post(TOKENS, body=body, headers=FORM)
    assert "refresh_token" in result.json, result.text


def test_scope_and_resource_narrow_the_grant_and_its_family(client: testing.TestClient) -> None:
    access, refresh_token = tokens_of(login(client, scope="read", resource=REPORTS))
    assert claims_of(access)["scope"] == "read" and claims_of(access)["aud"] == REPORTS
    renewed = refresh(client, refresh_token)
    assert renewed.json["scope"] == "read", renewed.text
    assert claims_of(renewed.json["access_token"])["aud"] == REPORTS
    assert_error(refresh(client, renewed.json["refresh_token"], scope="read write"), 400, "invalid_scope")


@pytest.mark.parametrize(
    ("params", "error"),
    [({"scope": "read admin"}, "invalid_scope"), ({"resource": "https://evil.example"}, "invalid_target")],
)
def test_bad_scope_or_resource_is_refused_without_checking_the_password(
    http: testing.TestClient, scrypt_calls: ScryptCounter, params: dict[str, str], error: str
) -> None:
    tokens_of(login(http, username="alice", password="alice-pw"))  # warms the client secret
    scrypt_calls.calls = 0
    assert_error(login(http, username="alice", password="wrong", **params), 400, error)
    assert scrypt_calls.calls == 0
    for _ in range(3):  # and it counted no failure: three real ones are still needed to lock
        assert_error(login(http, username="alice", password="wrong"), 400, "invalid_grant")
    assert_error(login(http, username="alice", password="alice-pw"), 429, "slow_down")


def test_unknown_user_and_wrong_password_get_one_answer(http: testing.TestClient) -> None:
    wrong = login(http, username="alice", password="nope")
    unknown = login(http, username="mallory", password="nope")
    assert_error(wrong, 400, "invalid_grant")
    assert wrong.json == unknown.json
    assert "refresh_token" not in wrong.json


@pytest.mark.parametrize(
    "params",
    [
        {"grant_type": "password", "password": PASSWORD},
        {"grant_type": "password", "username": USER},
        {"grant_type": "password", "username": "", "password": PASSWORD},
        {"grant_type": "password", "username": USER, "password": ""},
        {"grant_type": "password", "username": "a" * 257, "password": PASSWORD},
        {"grant_type": "password", "username": USER, "password": "p" * 1025},
    ],
    ids=["no-username", "no-password", "empty-username", "empty-password", "long-username", "long-password"],
)
def test_missing_empty_or_oversize_credentials_are_refused_before_hashing(
    http: testing.TestClient, scrypt_calls: ScryptCounter, params: dict[str, str]
) -> None:
    tokens_of(login(http, username="alice", password="alice-pw"))  # warms the client secret
    scrypt_calls.calls = 0
    result = http.simulate_post(TOKENS, body=urlencode(params), headers=basic())
    assert_error(result, 400, "invalid_request")
    assert scrypt_calls.calls == 0


def test_longest_allowed_credentials_are_checked(http: testing.TestClient) -> None:
    assert_error(login(http, username="a" * 256, password="p" * 1024), 400, "invalid_grant")


def test_lockout_after_max_failures_refuses_the_right_password_until_the_window_passes(
    http: testing.TestClient, clock: Clock, scrypt_calls: ScryptCounter
) -> None:
    for _ in range(3):
        assert_error(login(http, username="alice", password="guess"), 400, "invalid_grant")
    clock.now += 100
    scrypt_calls.calls = 0
    locked = login(http, username="alice", password="alice-pw")
    assert_error(locked, 429, "slow_down")
    assert int(locked.headers["Retry-After"]) == WINDOW - 100
    assert set(locked.json) == {"error", "error_description"}  # RFC 6749 §5.2 shape
    assert scrypt_calls.calls == 0  # refused before hashing: guessing gains nothing
    clock.now += WINDOW - 100
    tokens_of(login(http, username="alice", password="alice-pw"))


def test_one_address_guessing_many_users_is_locked_out_everywhere(http: testing.TestClient) -> None:
    for name in ("u1", "u2", "u3"):
        login(http, username=name, password="guess", remote_addr="198.51.100.7")
    assert_error(login(http, username="bob", password="bob-pw", remote_addr="198.51.100.7"), 429, "slow_down")
    tokens_of(login(http, username="bob", password="bob-pw", remote_addr="198.51.100.8"))


def test_guesses_from_many_addresses_lock_the_user(http: testing.TestClient) -> None:
    for n in range(3):
        login(http, username="bob", password="guess", remote_addr=f"203.0.113.{n}")
    assert_error(login(http, username="bob", password="bob-pw", remote_addr="192.0.2.1"), 429, "slow_down")


def test_success_resets_the_user_counter_but_not_the_address_counter(http: testing.TestClient) -> None:
    a, b = "198.51.100.1", "198.51.100.2"
    for _ in range(2):
        login(http, username="alice", password="guess", remote_addr=a)
    tokens_of(login(http, username="alice", password="alice-pw", remote_addr=a))
    # alice's counter is back to 0: two more failures from elsewhere do not lock her.
    for _ in range(2):
        login(http, username="alice", password="guess", remote_addr=b)
    tokens_of(login(http, username="alice", password="alice-pw", remote_addr=b))
    # Address a still holds its 2 failures: one more (at any user) locks it.
    login(http, username="bob", password="guess", remote_addr=a)
    assert_error(login(http, username="alice", password="alice-pw", remote_addr=a), 429, "slow_down")


def test_counters_use_the_names_the_authorize_page_shares(
    http: testing.TestClient, settings: Settings, store: Any, clock: Clock
) -> None:
    limiter = FailureLimiter(
        store, pepper=PEPPER, prefix=settings.redis_prefix, max_failures=3, window_seconds=WINDOW
    )
    login(http, username="alice", password="guess", remote_addr="192.0.2.9")
    # The user's counter is the page's; the address is the client's backend: (client, address).
    for key in ("user:alice", "client-addr:testclient|192.0.2.9"):  # exactly these, one failure each
        assert limiter.acquire([key], now=clock.now) is None
        assert limiter.acquire([key], now=clock.now) is None
        assert limiter.acquire([key], now=clock.now) is not None, key
    # Attempts counted by the login page under user:<name> lock the password grant.
    for _ in range(3):
        assert limiter.acquire(["user:bob"], now=clock.now) is None
    assert_error(login(http, username="bob", password="bob-pw", remote_addr="192.0.2.10"), 429, "slow_down")


def test_client_authentication_failure_counts_no_user_failure(http: testing.TestClient) -> None:
    for _ in range(4):
        assert_error(
            login(http, username="alice", password="guess", auth=("testclient", "bad")), 401, "invalid_client"
        )
    tokens_of(login(http, username="alice", password="alice-pw"))


def test_a_client_without_the_password_grant_is_unauthorized(
    settings: Settings, keyring: KeyRing, store: Any
) -> None:
    other = client_like(settings, "other", grant_types=frozenset({"client_credentials"}))
    http = make_app(settings, keyring, store, clients=(other,))
    assert_error(login(http, auth=("other", "othersecret")), 400, "unauthorized_client")


def test_without_the_refresh_grant_no_refresh_token_and_no_family(
    settings: Settings, keyring: KeyRing, store: Any
) -> None:
    other = client_like(settings, "other", grant_types=frozenset({"password"}))
    http = make_app(settings, keyring, store, clients=(other,))
    result = login(http, auth=("other", "othersecret"))
    assert result.status_code == 200 and "refresh_token" not in result.json
    assert "fid" not in claims_of(result.json["access_token"])
    assert not list(store.scan_iter(match="*{f:*"))


def test_a_public_client_logs_in_with_its_client_id(settings: Settings, keyring: KeyRing, store: Any) -> None:
    spa = client_like(settings, "spa", public=True)
    http = make_app(settings, keyring, store, clients=(spa,))
    access, refresh_token = tokens_of(login(http, auth="spa"))
    assert claims_of(access)["client_id"] == "spa"
    assert refresh(http, refresh_token, auth="spa").status_code == 200
