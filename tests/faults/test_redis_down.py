"""Fault 1: Redis down at start, down mid-run, or frozen; the service degrades and recovers.

What needs no Redis (client_credentials, JWKS, the login page itself, /healthz) keeps working
with no error at all; what needs it answers 503 temporarily_unavailable with Retry-After and
no-store within BOUND seconds (never a 500, never a hung worker); and once Redis answers again
the same processes serve every grant within 2 s, without a restart.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.faults import calls
from tests.faults.redisproc import Farm, RedisProcess

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

RECOVERY = 2.0  # seconds from Redis answering again to every grant working


def env_for(redis: RedisProcess) -> dict[str, str]:
    return {"JWTAUTH_REDIS_URL": redis.url, "JWTAUTH_REDIS_PREFIX": "jwtauth-fault:"}


def assert_degraded(base: str, refresh_token: str | None = None, code: str | None = None) -> None:
    """Check every endpoint while the store is unreachable."""
    assert calls.timed("GET", base + "/healthz").status_code == 200
    # Still ready (it can sign): a shared outage must not empty the load balancer.
    ready = calls.timed("GET", base + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"signing_key": "ok", "store": "unavailable"}
    assert calls.timed("GET", base + "/readyz/store").status_code == 503
    # No Redis needed: these work with no error at all.
    assert calls.ok(calls.client_credentials(base))["token_type"] == "Bearer"
    assert calls.jwks(base).json()["keys"]
    fields, cookie = calls.login_page(base)  # the page is HMAC-protected, not stored
    # Redis needed: 503 temporarily_unavailable, Retry-After, no-store.
    calls.assert_unavailable(calls.password(base))
    calls.assert_unavailable(calls.refresh(base, refresh_token or calls.wellformed_refresh_token()))
    calls.assert_unavailable(calls.exchange(base, code or "A" * 43))
    # The consent POST needs the store (login counters, the code): the client is told to retry
    # through its redirect URI (RFC 6749 §4.1.2.1), the user never sees a 500.
    redirected = calls.redirect_params(calls.allow(base, fields, cookie))
    assert redirected["error"] == "temporarily_unavailable" and "code" not in redirected
    # No worker hangs: a burst wider than every worker's threads is answered, each in time.
    with ThreadPoolExecutor(16) as pool:
        burst = list(pool.map(lambda _: calls.password(base), range(16)))
    for response in burst:
        calls.assert_unavailable(response)


def assert_recovers(base: str, since: float) -> None:
    """Every grant works again within RECOVERY seconds of `since` (when Redis came back)."""

    def ready() -> bool:
        return calls.timed("GET", base + "/readyz/store").status_code == 200

    def logged_in() -> dict[str, Any] | None:
        response = calls.password(base)
        return response.json() if response.status_code == 200 else None

    calls.until(ready, timeout=RECOVERY, what="/readyz/store 200")
    # Both workers: a handful of logins, every one 200 within the window.
    first = calls.until(logged_in, timeout=RECOVERY, what="the password grant")
    for _ in range(4):
        calls.ok(calls.password(base))
    assert time.monotonic() - since < RECOVERY + 1.5  # the checks above included
    calls.ok(calls.refresh(base, first["refresh_token"]))
    calls.ok(calls.exchange(base, calls.authorize(base)))


def test_redis_down_at_start(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    redis = redis_farm.server()
    redis.kill()  # its port now has nothing behind it
    with serve(workers=2, env=env_for(redis), wait_for="/healthz") as server:
        assert_degraded(server.base)
        redis.start()
        assert_recovers(server.base, time.monotonic())


def test_redis_down_mid_run(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    redis = redis_farm.server()
    with serve(workers=2, env=env_for(redis)) as server:
        before = calls.ok(calls.password(server.base))
        code = calls.authorize(server.base)
        redis.kill()
        assert_degraded(server.base, before["refresh_token"], code)
        redis.start()
        assert_recovers(server.base, time.monotonic())


def test_redis_frozen_answers_in_time_and_keeps_state(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    # SIGSTOP: connections are accepted by the kernel but never answered, the worst case for
    # a worker; the short socket timeout turns it into a quick 503.
    redis = redis_farm.server()
    with serve(workers=2, env=env_for(redis)) as server:
        before = calls.ok(calls.password(server.base))
        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            calls.assert_unavailable(calls.refresh(server.base, before["refresh_token"]))
            calls.assert_unavailable(calls.password(server.base))
            assert calls.ok(calls.client_credentials(server.base))["access_token"]
            assert calls.timed("GET", server.base + "/readyz/store").status_code == 503
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        since = time.monotonic()

        def rotated() -> requests.Response | None:
            # The 503 above may have reached Redis after the socket timed out: the retry of the
            # same token is then a replay inside the grace period, never reuse (RFC 9700 §4.14.2).
            response = calls.refresh(server.base, before["refresh_token"])
            return response if response.status_code == 200 else None

        again = calls.until(rotated, timeout=RECOVERY, what="the refresh after SIGCONT")
        assert time.monotonic() - since < RECOVERY
        calls.ok(calls.refresh(server.base, again.json()["refresh_token"]))


def test_a_read_only_replica_is_503_until_promoted(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    # JWTAUTH_REDIS_URL names a replica (a demoted primary behind a DNS name): READONLY is an
    # outage for the client, never a 500; once promoted, the same workers write to it.
    primary = redis_farm.server()
    replica = redis_farm.replica_of(primary)
    with serve(workers=2, env=env_for(replica)) as server:
        assert calls.ok(calls.client_credentials(server.base))["access_token"]
        calls.assert_unavailable(calls.password(server.base))
        code_page, cookie = calls.login_page(server.base)
        assert calls.redirect_params(calls.allow(server.base, code_page, cookie))["error"] == (
            "temporarily_unavailable"
        )
        with replica.client() as conn:
            conn.execute_command("REPLICAOF", "NO", "ONE")
        promoted = time.monotonic()
        login = calls.until(
            lambda: calls.password(server.base).status_code == 200, timeout=RECOVERY, what="a login"
        )
        assert login and time.monotonic() - promoted < RECOVERY
        calls.ok(calls.exchange(server.base, calls.authorize(server.base)))
