"""A retried rotation is the same rotation: never "reuse detected" for a healthy family.

RFC 9700 §4.14.2 wants a rotated-out refresh token seen again to end the family, and allows
a short grace period for a lost response. Three ways a rotation is sent twice, over HTTP:
the client presents the same token twice quickly; the client retries after a 503 caused by a
Redis timeout (the rotation ran, its reply came too late); and jwtauth's own one retry re-sends
the command after a reply lost with its connection, which must work even with no grace.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults import calls
from tests.faults.proxy import evalsha_on, reply_faults
from tests.faults.redisproc import Farm
from tests.helpers import FIXTURES

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

PREFIX = "jwtauth-fault:"


def generation(conn: Any, family_id: str) -> int:
    return int(conn.hget(f"{PREFIX}{{f:{family_id}}}", "gen"))


def introspect(base: str, token: str) -> bool:
    response = calls.timed("POST", base + "/api/v1/introspect", data={"token": token}, auth=calls.AUTH)
    verdict: bool = calls.ok(response)["active"]
    return verdict


def test_retries_of_one_rotation_get_one_successor(
    redis_farm: Farm, serve: Callable[..., Any], tmp_path: Path
) -> None:
    redis = redis_farm.server()
    no_grace = tmp_path / "no-grace.toml"
    no_grace.write_text(FIXTURES.read_text().replace("refresh_grace = 5", "refresh_grace = 0"))
    with reply_faults(redis.port) as proxy, redis.client() as conn:
        env = {"JWTAUTH_REDIS_URL": proxy.url, "JWTAUTH_REDIS_PREFIX": PREFIX}
        with serve(workers=2, env=env) as server:
            base = server.base
            # 1. The same token twice, quickly (a client that lost the first response).
            token = calls.ok(calls.password(base))["refresh_token"]
            family = token.split(".")[0]
            first = calls.ok(calls.refresh(base, token))["refresh_token"]
            again = calls.ok(calls.refresh(base, token))["refresh_token"]
            assert again == first and generation(conn, family) == 2
            token = calls.ok(calls.refresh(base, first))["refresh_token"]
            assert introspect(base, token)

            # 2. Redis answers after the socket timeout: 503, yet the rotation happened. The
            #    client's retry of the same token is a replay: the successor it never saw.
            proxy.arm(evalsha_on(family), delay=0.8)
            calls.assert_unavailable(calls.refresh(base, token))
            assert generation(conn, family) == 4  # it ran
            successor = calls.ok(calls.refresh(base, token))["refresh_token"]
            assert generation(conn, family) == 4  # ... once
            token = calls.ok(calls.refresh(base, successor))["refresh_token"]
            assert introspect(base, token)

            # 3. The reply is lost with the connection: jwtauth's retry re-sends the command.
            proxy.arm(evalsha_on(family))
            token = calls.ok(calls.refresh(base, token))["refresh_token"]
            assert generation(conn, family) == 6
            assert calls.ok(calls.refresh(base, token))["refresh_token"]

        # 3 again with no grace period: only the request's own identity can tell the re-sent
        # command from a stolen token presented again.
        with serve(workers=1, env=env, config=no_grace) as server:
            token = calls.ok(calls.password(server.base))["refresh_token"]
            family = token.split(".")[0]
            proxy.arm(evalsha_on(family))
            rotated = calls.ok(calls.refresh(server.base, token))["refresh_token"]
            assert proxy.applied == 3
            assert generation(conn, family) == 2
            newest = calls.ok(calls.refresh(server.base, rotated))["refresh_token"]
            assert introspect(server.base, newest)
            # Without a grace period a rotated-out token presented again is reuse, as it should be.
            calls.assert_invalid_grant(calls.refresh(server.base, token))
            assert not introspect(server.base, newest)
