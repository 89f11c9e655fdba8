"""Tests for jwtauth.store.limits: the fixed-window lockout production counts with.

Every test drives what jwtauth.accounts.login runs: `acquire` before a password check,
`release` and `reset` after a success, `guard` inside the password grant's one-trip script.
"""

from __future__ import annotations

from typing import Any

import pytest

from jwtauth.store import FailureLimiter, FamilySpec, RefreshStore
from jwtauth.store.pepper import Pepper
from tests.helpers import PEPPER, race

NOW = 1_700_000_000.0
WINDOW = 300.0
USER = "user:alice@example.com"
ADDRESS = "ip:203.0.113.7"


def make_limiter(backend: Any, **options: Any) -> FailureLimiter:
    return FailureLimiter(
        backend.client, pepper=PEPPER, prefix=backend.prefix, max_failures=3, window_seconds=WINDOW, **options
    )


def counter(backend: Any) -> dict[bytes, bytes]:
    """Return the one counter hash under this test's prefix (n, start)."""
    (key,) = backend.key_names()
    return dict(backend.client.hgetall(key))


DEV = ("dev", 60)  # the known-device mark a guarded sign-in sets


def spec(now: float) -> FamilySpec:
    return FamilySpec(
        client_id="c", subject="alice", scope="read", audience=("https://api.example.com",),
        auth_time=now, now=now, absolute_ttl=3600.0, idle_ttl=600.0,
    )  # fmt: skip


def test_the_window_opens_at_the_first_attempt_and_locks_after_max(backend: Any) -> None:
    limiter = make_limiter(backend)
    for now in (NOW, NOW + 1, NOW + 10):
        assert limiter.acquire([USER], now=now) is None
    assert counter(backend) == {b"n": b"3", b"start": repr(NOW).encode(), b"max": b"3"}
    # Locked until the window that opened at NOW closes, whatever the attempt carries.
    assert limiter.acquire([USER], now=NOW + 10) == WINDOW - 10
    assert limiter.acquire([USER], now=NOW + 100.5) == 200  # rounded up
    assert limiter.acquire([USER], now=NOW + WINDOW - 0.1) == 1  # never 0 while locked
    assert counter(backend)[b"n"] == b"3"  # a refused attempt is not counted
    assert limiter.acquire([USER], now=NOW + WINDOW) is None  # closed: counted again


def test_the_counter_expires_when_its_window_ends(backend: Any) -> None:
    limiter = make_limiter(backend)
    limiter.acquire([USER], now=NOW)
    (key,) = backend.key_names()
    assert (WINDOW - 5) * 1000 < backend.client.pttl(key) <= WINDOW * 1000
    limiter.acquire([USER], now=NOW + 100)  # same window: its end does not move
    assert (WINDOW - 105) * 1000 < backend.client.pttl(key) <= (WINDOW - 100) * 1000


def test_attempts_while_locked_do_not_extend_the_lock(backend: Any) -> None:
    limiter = make_limiter(backend)
    waits = [limiter.acquire([USER], now=NOW + step) for step in range(10)]
    assert waits == [None] * 3 + [WINDOW - step for step in range(3, 10)]
    assert limiter.acquire([USER], now=NOW + 10) == WINDOW - 10
    (key,) = backend.key_names()
    assert (WINDOW - 7) * 1000 < backend.client.pttl(key) <= (WINDOW - 2) * 1000  # set at NOW + 2


def test_after_the_window_a_new_one_opens_with_a_count_of_one(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(3):
        limiter.acquire([USER], now=NOW + step)
    later = NOW + WINDOW + 1
    assert limiter.acquire([USER], now=later) is None
    assert counter(backend) == {b"n": b"1", b"start": repr(later).encode(), b"max": b"3"}
    assert limiter.acquire([USER], now=later + 1) is None
    assert limiter.acquire([USER], now=later + 2) is None
    assert limiter.acquire([USER], now=later + 2) == WINDOW - 2  # the new window opened at `later`


def test_release_gives_back_one_attempt(backend: Any) -> None:
    limiter = make_limiter(backend)
    limiter.acquire([USER], now=NOW)
    limiter.acquire([USER], now=NOW + 1)
    limiter.release(USER)
    assert counter(backend)[b"n"] == b"1"
    limiter.release(USER)
    assert backend.key_names() == []  # nothing left on record: the counter is gone
    limiter.release(USER)
    assert backend.key_names() == []  # giving back what was never counted writes nothing
    for step in range(3):
        assert limiter.acquire([USER], now=NOW + 2 + step) is None
    assert limiter.acquire([USER], now=NOW + 5) == WINDOW - 3


def test_a_locked_later_key_gives_back_the_earlier_keys_counts(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(3):
        limiter.acquire([ADDRESS], now=NOW + step)
    assert limiter.acquire([USER], now=NOW + 10) is None  # alice has 1 on record
    for _ in range(5):
        assert limiter.acquire([USER, ADDRESS], now=NOW + 20) == WINDOW - 20
    # Refused attempts counted nowhere: alice is still at 1 of 3.
    assert limiter.acquire([USER], now=NOW + 21) is None
    assert limiter.acquire([USER], now=NOW + 22) is None
    assert limiter.acquire([USER], now=NOW + 23) == WINDOW - 13


def test_the_first_locked_key_refuses_with_its_own_wait(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(3):
        limiter.acquire([USER], now=NOW + step)
    assert limiter.acquire([USER, ADDRESS], now=NOW + 50) == WINDOW - 50
    assert len(backend.key_names()) == 1  # ADDRESS, after the locked USER, was never counted
    assert limiter.acquire(["user:bob"], now=NOW + 50) is None
    assert limiter.acquire([], now=NOW) is None


def test_reset_forgets_one_key(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(3):
        limiter.acquire([USER, ADDRESS], now=NOW + step)
    limiter.reset(USER)
    assert limiter.acquire([USER], now=NOW + 3) is None
    assert limiter.acquire([ADDRESS], now=NOW + 3) == WINDOW - 3


def test_workers_share_the_count(backend: Any) -> None:
    workers = [make_limiter(backend) for _ in range(3)]
    for step, worker in enumerate(workers):
        assert worker.acquire([USER], now=NOW + step) is None
    assert all(w.acquire([USER], now=NOW + 3) == WINDOW - 3 for w in workers)


def test_concurrent_attempts_never_pass_the_limit(backend: Any) -> None:
    limiter = make_limiter(backend)
    waits = race(lambda: limiter.acquire([USER], now=NOW))
    assert sorted(waits, key=lambda w: w or 0) == [None] * 3 + [int(WINDOW)] * 17


def test_keys_are_keyed_with_the_pepper_and_expire(backend: Any) -> None:
    ours = make_limiter(backend)
    other = FailureLimiter(
        backend.client, pepper=Pepper(b"another deployment's pepper 32B!"), prefix=backend.prefix,
        max_failures=3, window_seconds=WINDOW,
    )  # fmt: skip
    ours.acquire([USER, ADDRESS], now=NOW)
    other.acquire([USER], now=NOW)
    stored = backend.raw_bytes()
    assert len(backend.key_names()) == 3
    assert [b for b in stored if b"alice" in b or b"203.0.113.7" in b] == []
    for key in backend.key_names():
        assert 0 < backend.client.pttl(key) <= WINDOW * 1000


@pytest.mark.parametrize("options", [{"max_failures": 0}, {"window_seconds": 0}])
def test_nonsense_limits_are_refused(options: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"max_failures": 3, "window_seconds": WINDOW, **options}
    with pytest.raises(ValueError, match="max_failures"):
        FailureLimiter(object(), pepper=PEPPER, **settings)  # type: ignore[arg-type]


def test_the_guard_locks_exactly_when_acquire_refuses(backend: Any) -> None:
    if backend.kind == "cluster":
        pytest.skip("the guard runs in scripts of standalone Redis and Sentinel only")
    limiter = make_limiter(backend)
    refresh = RefreshStore(backend.client, pepper=PEPPER, prefix=backend.prefix)
    steps = [NOW, NOW + 1, NOW + 2, NOW + 2.5, NOW + 100.5, NOW + WINDOW - 0.1, NOW + WINDOW, NOW + 400]
    seen = []
    for step, now in enumerate(steps):
        keys = [USER] if step % 2 else [USER, ADDRESS]
        # The production probe: the password grant's guarded family creation.
        created = refresh.create_guarded(spec(now), limiter.guard([USER, ADDRESS], now=now, remember=DEV))
        assert created is not None
        issued, verdict = created
        assert (issued is None) == (verdict[0] is not None)
        seen.append(verdict)
        # Only USER can lock (ADDRESS is counted every other step), so both waits are USER's.
        assert verdict[0] == limiter.acquire(keys, now=now), (step, verdict)
    # The states compared include none on record, on record but open, locked, and expired.
    assert seen[0] == (None, (False, False)) and seen[1] == (None, (True, True))
    assert seen[3] == (WINDOW - 2, (True, True)) and seen[5] == (1, (True, True))
    assert seen[6] == (None, (True, True))


def test_a_guarded_family_is_created_only_while_nothing_is_locked(backend: Any) -> None:
    if backend.kind == "cluster":
        pytest.skip("create_guarded is for standalone Redis and Sentinel only")
    limiter = make_limiter(backend)
    refresh = RefreshStore(backend.client, pepper=PEPPER, prefix=backend.prefix)
    limiter.acquire([USER], now=NOW)
    created = refresh.create_guarded(spec(NOW), limiter.guard([USER, ADDRESS], now=NOW, remember=DEV))
    assert created is not None
    issued, verdict = created
    assert issued is not None and verdict == (None, (True, False))
    assert refresh.lookup(issued.token, now=NOW) is not None
    for _ in range(2):
        limiter.acquire([ADDRESS, USER], now=NOW)
    before = backend.key_names()
    refused = refresh.create_guarded(spec(NOW + 1), limiter.guard([USER, ADDRESS], now=NOW + 1, remember=DEV))
    assert refused == (None, (WINDOW - 1, (True, True)))
    assert backend.key_names() == before  # a locked sign-in writes nothing
