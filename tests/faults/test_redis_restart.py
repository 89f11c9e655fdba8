"""Fault 2: Redis restarted empty; what it lost is invalid_grant, never 500, and scripts reload.

The store's Lua scripts run by EVALSHA; an empty Redis answers NOSCRIPT, and redis-py's Script
objects load the script again and retry. These tests prove that through HTTP: after a restart
(and after SCRIPT FLUSH on a live server) every grant works on the first try.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults import calls
from tests.faults.redisproc import Farm

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


def loaded_scripts(conn: Any) -> int:
    """Return how many scripts the server has cached (INFO memory number_of_cached_scripts)."""
    count: int = conn.info("memory")["number_of_cached_scripts"]
    return count


def test_state_lost_in_a_restart_is_invalid_grant(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    redis = redis_farm.server()
    env = {"JWTAUTH_REDIS_URL": redis.url, "JWTAUTH_REDIS_PREFIX": "jwtauth-fault:"}
    with serve(workers=2, env=env) as server:
        login = calls.ok(calls.password(server.base))
        rotated = calls.ok(calls.refresh(server.base, login["refresh_token"]))
        code = calls.authorize(server.base)
        redeemed = calls.ok(calls.exchange(server.base, calls.authorize(server.base)))
        with redis.client() as conn:
            assert loaded_scripts(conn) > 0
        redis.restart()  # SIGKILL, then an empty server on the same port
        with redis.client() as conn:
            assert loaded_scripts(conn) == 0 and conn.dbsize() == 0
        # Every token and code from before: invalid_grant (RFC 6749 §5.2), on the first try.
        started = time.monotonic()
        calls.assert_invalid_grant(calls.refresh(server.base, rotated["refresh_token"]))
        calls.assert_invalid_grant(calls.refresh(server.base, login["refresh_token"]))
        calls.assert_invalid_grant(calls.refresh(server.base, redeemed["refresh_token"]))
        calls.assert_invalid_grant(calls.exchange(server.base, code))
        # Revoking what the store forgot is still a 200 (RFC 7009 §2.2).
        revoked = calls.timed(
            "POST", server.base + "/api/v1/revoke", data={"token": rotated["refresh_token"]}, auth=calls.AUTH
        )
        assert revoked.status_code == 200, revoked.text
        # New grants work at once: NOSCRIPT made the workers load their scripts again.
        fresh = calls.ok(calls.password(server.base))
        calls.ok(calls.refresh(server.base, fresh["refresh_token"]))
        calls.ok(calls.exchange(server.base, calls.authorize(server.base)))
        assert time.monotonic() - started < 5
        with redis.client() as conn:
            assert loaded_scripts(conn) > 0


def test_script_flush_on_a_live_server_is_invisible(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    redis = redis_farm.server()
    env = {"JWTAUTH_REDIS_URL": redis.url, "JWTAUTH_REDIS_PREFIX": "jwtauth-fault:"}
    with serve(workers=1, env=env) as server:
        login = calls.ok(calls.password(server.base))
        code = calls.authorize(server.base)
        with redis.client() as conn:
            conn.script_flush()
            assert loaded_scripts(conn) == 0
        # The state survived, only the script cache went: every call succeeds on the first try.
        rotated = calls.ok(calls.refresh(server.base, login["refresh_token"]))
        calls.ok(calls.refresh(server.base, rotated["refresh_token"]))
        calls.ok(calls.exchange(server.base, code))
        calls.ok(calls.password(server.base))
