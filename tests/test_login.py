"""The password grant's one-round-trip sign-in for passwords this process already proved.

A memo-proven password (jwtauth.accounts.hashing) checks the brute-force counters and starts the refresh
family in one Redis script; the lockout still refuses it (RFC 6749 §4.3.2), creating nothing,
and wrong passwords never take that path.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from falcon import testing

from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.helpers import PEPPER, Clock, ScryptCounter, assert_error, cheap_user, login, tokens_of
from tests.helpers import build_app as make_app

WINDOW = 300


class RoundTrips:
    """Count the requests a Redis client sends: one per command, one per pipeline."""

    def __init__(self, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real_command, real_execute = client.execute_command, redis.client.Pipeline.execute

        def command(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real_command(*args, **kwargs)

        def execute(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real_execute(pipe, *args, **kwargs)

        monkeypatch.setattr(client, "execute_command", command)
        monkeypatch.setattr(redis.client.Pipeline, "execute", execute)


@pytest.fixture
def http(settings: Settings, keyring: KeyRing, store: Any, clock: Clock) -> testing.TestClient:
    """An app with max_failures=3 and two quick-to-check users, alice and bob."""
    users = (cheap_user("alice", "alice-pw"), cheap_user("bob", "bob-pw"))
    return make_app(settings, keyring, store, users=users, clock=clock, max_failures=3, failure_window=WINDOW)


@pytest.fixture
def trips(store: Any, monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    return RoundTrips(store, monkeypatch)


def families(store: Any) -> int:
    """Count the refresh-family hashes in Redis."""
    return sum(1 for key in store.scan_iter(match="*{f:*}") if not key.endswith((b":used", b":revoked")))


def warm(http: testing.TestClient) -> None:
    """Prove alice's password, then sign in once more (Redis caches the script on first use)."""
    for _ in range(2):
        tokens_of(login(http, username="alice", password="alice-pw"))


def test_first_sign_in_takes_the_full_path(
    http: testing.TestClient, trips: RoundTrips, scrypt_calls: ScryptCounter
) -> None:
    tokens_of(login(http, username="bob", password="bob-pw"))  # Redis caches the scripts
    trips.count, scrypt_calls.calls = 0, 0
    tokens_of(login(http, username="alice", password="alice-pw"))
    assert scrypt_calls.calls == 1  # not proven yet: scrypt ran
    # Is the device known (issue 18)? Then the attempt is counted against user and address before
    # scrypt (two atomic steps, one per hash tag), then the family (one pipeline), then the
    # user's count is reset, the address gets its attempt back and the device is remembered.
    # Only a process's first sign-in of a user pays this.
    assert trips.count == 7


def test_proven_sign_in_is_one_round_trip(
    http: testing.TestClient, store: Any, trips: RoundTrips, scrypt_calls: ScryptCounter
) -> None:
    warm(http)
    trips.count, scrypt_calls.calls = 0, 0
    _, refresh_token = tokens_of(login(http, username="alice", password="alice-pw"))
    assert trips.count == 1 and scrypt_calls.calls == 0
    assert families(store) == 3 and refresh_token


def test_proven_sign_in_resets_a_user_counter_on_record(
    http: testing.TestClient, clock: Clock, trips: RoundTrips
) -> None:
    warm(http)
    for _ in range(2):
        assert_error(login(http, username="alice", password="wrong"), 400, "invalid_grant")
    trips.count = 0
    tokens_of(login(http, username="alice", password="alice-pw"))
    assert trips.count == 2  # the script, then the reset of alice's 2 failures
    # The reset happened: two more failures do not lock her, a third does.
    elsewhere = "192.0.2.9"
    for _ in range(2):
        failed = login(http, username="alice", password="wrong", remote_addr=elsewhere)
        assert_error(failed, 400, "invalid_grant")
    tokens_of(login(http, username="alice", password="alice-pw", remote_addr="192.0.2.9"))


@pytest.mark.parametrize("remote_addr", ["127.0.0.1", "192.0.2.77"])
def test_locked_out_proven_password_is_refused_and_creates_no_family(
    http: testing.TestClient, store: Any, clock: Clock, scrypt_calls: ScryptCounter, remote_addr: str
) -> None:
    # The user counter (other address) or the device's counter (same, known, address) locks.
    tokens_of(login(http, username="alice", password="alice-pw"))
    for _ in range(3):
        failed = login(http, username="alice", password="wrong", remote_addr=remote_addr)
        assert_error(failed, 400, "invalid_grant")
    before, scrypt_calls.calls = families(store), 0
    locked = login(http, username="alice", password="alice-pw", remote_addr=remote_addr)
    assert_error(locked, 429, "slow_down")
    assert "refresh_token" not in locked.json and "access_token" not in locked.json
    assert int(locked.headers["Retry-After"]) == WINDOW
    assert families(store) == before == 1
    assert scrypt_calls.calls == 0
    clock.now += WINDOW  # the window passes: the same password works again
    tokens_of(login(http, username="alice", password="alice-pw", remote_addr=remote_addr))


def test_locked_out_wrong_password_costs_no_scrypt(
    http: testing.TestClient, trips: RoundTrips, scrypt_calls: ScryptCounter
) -> None:
    tokens_of(login(http, username="alice", password="alice-pw"))
    for _ in range(3):
        assert_error(login(http, username="alice", password="wrong"), 400, "invalid_grant")
    scrypt_calls.calls, trips.count = 0, 0
    assert_error(login(http, username="alice", password="wrong-again"), 429, "slow_down")
    assert scrypt_calls.calls == 0
    # Is the device known, then the counters; nothing counted while locked.
    assert trips.count == 2


def test_concurrent_wrong_guesses_cannot_outrun_the_lock(
    settings: Settings, keyring: KeyRing, store: Any, scrypt_calls: ScryptCounter
) -> None:
    """Every guess is counted before scrypt: 30 at once get max_failures checks, not 30."""
    from concurrent.futures import ThreadPoolExecutor

    from jwtauth.accounts.hashing import SecretChecker
    from jwtauth.accounts.login import Limits, Login
    from jwtauth.accounts.users import UserDirectory
    from jwtauth.errors import SlowDown
    from jwtauth.store import FailureLimiter

    limiter = FailureLimiter(store, pepper=PEPPER, max_failures=5, window_seconds=300)
    login = Login(UserDirectory(settings.users, SecretChecker()), limiter, Limits(5, 100, 3600))

    def guess(i: int) -> str:
        try:
            user = login.attempt("testuser@example.com", f"wrong-{i}", "198.51.100.7", now=1000.0)
        except SlowDown:
            return "locked"
        return "ok" if user else "wrong"

    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(guess, range(30)))
    assert outcomes.count("wrong") == 5
    assert outcomes.count("locked") == 25
    assert scrypt_calls.calls == 5
    # And the right password is refused too while the lock lasts.
    with pytest.raises(SlowDown):
        login.attempt("testuser@example.com", "testpassword", "198.51.100.7", now=1001.0)
