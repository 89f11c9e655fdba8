"""Tests for jwtauth.store.limits: fixed-window lockout shared through Redis."""

from __future__ import annotations

from typing import Any

import pytest

from jwtauth.store import FailureLimiter, RefreshStore
from jwtauth.store.limits import GUARD_LUA

NOW = 1_700_000_000.0
WINDOW = 300.0
USER = "user:alice@example.com"
ADDRESS = "ip:203.0.113.7"


def make_limiter(backend: Any, **options: Any) -> FailureLimiter:
    return FailureLimiter(
        backend.client, prefix=backend.prefix, max_failures=3, window_seconds=WINDOW, **options
    )


def test_locks_after_max_failures_until_the_window_closes(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(2):
        limiter.record_failure([USER], now=NOW + step)
        assert limiter.retry_after([USER], now=NOW + step) is None
    limiter.record_failure([USER], now=NOW + 10)
    assert limiter.retry_after([USER], now=NOW + 10) == WINDOW - 10  # opened at NOW
    assert limiter.retry_after([USER], now=NOW + 100.5) == 200
    assert limiter.retry_after([USER], now=NOW + WINDOW - 0.1) == 1
    assert limiter.retry_after([USER], now=NOW + WINDOW) is None


def test_failures_while_locked_do_not_extend_the_lock(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(10):
        limiter.record_failure([USER], now=NOW + step)
    assert limiter.retry_after([USER], now=NOW + 10) == WINDOW - 10


def test_a_new_window_starts_with_a_count_of_one(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(3):
        limiter.record_failure([USER], now=NOW + step)
    later = NOW + WINDOW + 1
    limiter.record_failure([USER], now=later)
    limiter.record_failure([USER], now=later + 1)
    assert limiter.retry_after([USER], now=later + 2) is None
    limiter.record_failure([USER], now=later + 2)
    assert limiter.retry_after([USER], now=later + 2) == WINDOW - 2  # opened at `later`


def test_any_locked_key_refuses_and_the_longest_wait_wins(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(3):
        limiter.record_failure([ADDRESS], now=NOW + step)
    for step in range(3):
        limiter.record_failure([USER, ADDRESS], now=NOW + 100 + step)
    # ADDRESS's window opened at NOW; USER's at NOW + 100, so USER's lock ends later.
    assert limiter.retry_after([ADDRESS], now=NOW + 102) == WINDOW - 102
    assert limiter.retry_after([USER, ADDRESS], now=NOW + 102) == WINDOW - 2
    assert limiter.retry_after(["user:bob"], now=NOW + 102) is None
    assert limiter.retry_after([], now=NOW) is None


def test_reset_forgets_one_key(backend: Any) -> None:
    limiter = make_limiter(backend)
    for step in range(3):
        limiter.record_failure([USER, ADDRESS], now=NOW + step)
    limiter.reset(USER)
    assert limiter.retry_after([USER], now=NOW + 3) is None
    assert limiter.retry_after([ADDRESS], now=NOW + 3) is not None


def test_check_tells_which_keys_have_failures_on_record(backend: Any) -> None:
    # Login resets only a counter that exists: a clean sign-in costs no DEL round trip.
    limiter = make_limiter(backend)
    assert limiter.check([USER, ADDRESS], now=NOW) == (None, (False, False))
    limiter.record_failure([ADDRESS], now=NOW)
    assert limiter.check([USER, ADDRESS], now=NOW + 1) == (None, (False, True))
    for step in range(3):
        limiter.record_failure([USER], now=NOW + step)
    assert limiter.check([USER, ADDRESS], now=NOW + 10) == (WINDOW - 10, (True, True))


def test_workers_share_the_count(backend: Any) -> None:
    workers = [make_limiter(backend) for _ in range(3)]
    for step, worker in enumerate(workers):
        worker.record_failure([USER], now=NOW + step)
    assert all(w.retry_after([USER], now=NOW + 3) == WINDOW - 3 for w in workers)


def test_keys_are_hashed_salted_and_expire(backend: Any) -> None:
    plain, salted = make_limiter(backend), make_limiter(backend, salt=b"per-deployment")
    plain.record_failure([USER, ADDRESS], now=NOW)
    salted.record_failure([USER], now=NOW)
    stored = backend.raw_bytes()
    assert len(backend.key_names()) == 3
    assert [b for b in stored if b"alice" in b or b"203.0.113.7" in b] == []
    for key in backend.key_names():
        assert 0 < backend.client.pttl(key) <= WINDOW * 1000


@pytest.mark.parametrize("options", [{"max_failures": 0}, {"window_seconds": 0}])
def test_nonsense_limits_are_refused(options: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"max_failures": 3, "window_seconds": WINDOW, **options}
    with pytest.raises(ValueError, match="max_failures"):
        FailureLimiter(object(), **settings)  # type: ignore[arg-type]


def test_the_lua_guard_agrees_with_check(backend: Any) -> None:
    if backend.kind == "cluster":
        pytest.skip("the guard runs in scripts of standalone Redis and Sentinel only")
    limiter = make_limiter(backend)
    probe = backend.client.register_script(GUARD_LUA + "return failure_guard(1, 1)")

    def both(now: float) -> tuple[Any, Any]:
        guard = limiter.guard([USER, ADDRESS], now=now)
        via_lua = guard.verdict(probe(keys=list(guard.keys), args=list(guard.args)))
        return via_lua, limiter.check([USER, ADDRESS], now=now)

    steps = [NOW, NOW + 1, NOW + 2, NOW + 2.5, NOW + 100.5, NOW + WINDOW - 0.1, NOW + WINDOW, NOW + 400]
    seen = []
    for step, now in enumerate(steps):
        via_lua, via_check = both(now)
        assert via_lua == via_check, (step, via_lua, via_check)
        seen.append(via_lua)
        limiter.record_failure([USER] if step % 2 else [USER, ADDRESS], now=now)
    # The states compared include none on record, on record but open, locked, and expired.
    assert seen[0] == (None, (False, False)) and seen[1] == (None, (True, True))
    assert seen[3] == (WINDOW - 2, (True, True)) and seen[5] == (1, (True, True))
    assert seen[6] == (None, (True, True))


def test_a_guarded_family_is_created_only_while_nothing_is_locked(backend: Any) -> None:
    if backend.kind == "cluster":
        pytest.skip("create_guarded is for standalone Redis and Sentinel only")
    limiter = make_limiter(backend)
    refresh = RefreshStore(backend.client, prefix=backend.prefix)
    family = dict(
        client_id="c", subject="alice", scope="read", audience=["https://api.example.com"],
        auth_time=NOW, now=NOW, absolute_ttl=3600.0, idle_ttl=600.0,
    )
    limiter.record_failure([USER], now=NOW)
    created = refresh.create_guarded(limiter.guard([USER, ADDRESS], now=NOW), **family)
    assert created is not None
    issued, verdict = created
    assert issued is not None and verdict == (None, (True, False))
    assert refresh.lookup(issued.token, now=NOW) is not None
    for _ in range(2):
        limiter.record_failure([ADDRESS, USER], now=NOW)
    before = backend.key_names()
    refused = refresh.create_guarded(limiter.guard([USER, ADDRESS], now=NOW + 1), **family)
    assert refused == (None, (WINDOW - 1, (True, True)))
    assert backend.key_names() == before  # a locked sign-in writes nothing
