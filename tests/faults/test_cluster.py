"""Fault 4: Redis Cluster (three primaries on loopback): every grant, and the races, pass.

Every key of one store operation shares a hash tag, so each Lua script runs on one node; the
families of many logins spread over all three primaries, so every node serves scripts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults import calls
from tests.faults.redisproc import Farm, RedisProcess
from tests.helpers import race

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

PREFIX = "jwtauth-fault:"


def families_per_node(nodes: list[RedisProcess]) -> list[int]:
    """Return how many refresh families each node holds."""
    counts = []
    for node in nodes:
        with node.client() as conn:
            counts.append(sum(1 for key in conn.scan_iter(match=PREFIX + "{f:*}", _type="hash")))
    return counts


def introspect(base: str, token: str) -> bool:
    response = calls.timed("POST", base + "/api/v1/introspect", data={"token": token}, auth=calls.AUTH)
    verdict: bool = calls.ok(response)["active"]
    return verdict


def test_every_grant_and_both_races_on_a_cluster(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    nodes = redis_farm.cluster(3)
    url = "redis+cluster://" + ",".join(node.address for node in nodes)
    with serve(workers=2, env={"JWTAUTH_REDIS_URL": url, "JWTAUTH_REDIS_PREFIX": PREFIX}) as server:
        base = server.base
        assert calls.timed("GET", base + "/readyz").json()["checks"]["store"] == "ok"
        assert calls.ok(calls.client_credentials(base))["token_type"] == "Bearer"

        # password → a refresh chain, on families spread over every primary.
        logins = [calls.ok(calls.password(base)) for _ in range(6)]
        while not all(families_per_node(nodes)):  # random family ids: until each node has one
            assert len(logins) < 40, families_per_node(nodes)
            logins.append(calls.ok(calls.password(base)))
        for login in logins:
            token = login["refresh_token"]
            for _ in range(2):
                token = calls.ok(calls.refresh(base, token))["refresh_token"]
            assert introspect(base, token) and not introspect(base, login["refresh_token"])

        # Every node forgets its scripts (as after a restart or failover): NOSCRIPT is handled.
        for node in nodes:
            with node.client() as conn:
                conn.script_flush()
        token = calls.ok(calls.refresh(base, calls.ok(calls.password(base))["refresh_token"]))
        assert calls.ok(calls.refresh(base, token["refresh_token"]))

        # authorize (a browser's GET, then POST with the CSRF field and cookie) → code exchange.
        for _ in range(3):
            exchanged = calls.ok(calls.exchange(base, calls.authorize(base)))
            assert calls.ok(calls.refresh(base, exchanged["refresh_token"]))["refresh_token"]
        calls.assert_invalid_grant(calls.exchange(base, "A" * 43))

        # 20 concurrent refreshes of one token: one successor (the others replay it).
        token = calls.ok(calls.password(base))["refresh_token"]
        results = race(lambda: calls.refresh(base, token))
        assert [r.status_code for r in results] == [200] * 20, [r.text for r in results]
        (successor,) = {r.json()["refresh_token"] for r in results}
        newest = calls.ok(calls.refresh(base, successor))["refresh_token"]
        calls.assert_invalid_grant(calls.refresh(base, token))  # two generations old: reuse
        calls.assert_invalid_grant(calls.refresh(base, newest))  # ... which ended the family

        # 20 concurrent redemptions of one code: exactly one 200; the replays revoke its family.
        code = calls.authorize(base)
        results = race(lambda: calls.exchange(base, code))
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200] + [400] * 19, [r.text for r in results if r.status_code != 400]
        assert {r.json()["error"] for r in results if r.status_code == 400} == {"invalid_grant"}
        winner = next(r.json() for r in results if r.status_code == 200)
        calls.assert_invalid_grant(calls.refresh(base, winner["refresh_token"]))
        assert not introspect(base, winner["access_token"])

        # Revocation (RFC 7009) ends a family on whichever node holds it.
        doomed = calls.ok(calls.password(base))
        revoked = calls.timed(
            "POST", base + "/api/v1/revoke", data={"token": doomed["refresh_token"]}, auth=calls.AUTH
        )
        assert revoked.status_code == 200, revoked.text
        calls.assert_invalid_grant(calls.refresh(base, doomed["refresh_token"]))
        assert not introspect(base, doomed["access_token"])


def test_cluster_down_at_start_then_back(redis_farm: Farm, serve: Callable[..., Any]) -> None:
    # The cluster client is built on first use: workers boot with every node down, serve
    # client_credentials, answer 503 for the rest, and connect once the cluster is back.
    nodes = redis_farm.cluster(3)
    for node in nodes:
        node.kill()
    url = "redis+cluster://" + ",".join(node.address for node in nodes)
    env = {"JWTAUTH_REDIS_URL": url, "JWTAUTH_REDIS_PREFIX": PREFIX}
    with serve(workers=2, env=env, wait_for="/healthz") as server:
        assert calls.timed("GET", server.base + "/readyz/store").status_code == 503
        assert calls.ok(calls.client_credentials(server.base))["access_token"]
        calls.assert_unavailable(calls.password(server.base))
        calls.assert_unavailable(calls.refresh(server.base, calls.wellformed_refresh_token()))
        for node in nodes:  # same ports, same nodes.conf: the same cluster, empty
            node.start()
        for node in nodes:
            with node.client() as conn:
                calls.until(lambda conn=conn: conn.cluster("info")["cluster_state"] == "ok", timeout=10,
                            what="cluster_state:ok")  # fmt: skip
        back = time.monotonic()

        def logged_in() -> dict[str, Any] | None:
            response = calls.password(server.base)
            return response.json() if response.status_code == 200 else None

        login = calls.until(logged_in, timeout=2, what="the password grant on the cluster")
        calls.ok(calls.refresh(server.base, login["refresh_token"]))
        for _ in range(4):  # both workers
            calls.ok(calls.password(server.base))
        assert time.monotonic() - back < 3
