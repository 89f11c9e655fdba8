"""Fault 3: Sentinel failover (a primary, two replicas, three Sentinels, all on loopback).

A refresh chain keeps rotating through a manual failover (SENTINEL FAILOVER) and through the
death of the new primary (SIGKILL, Sentinel elects the last replica). Each rotation after a
failover must land on the primary Sentinel names: a rotation written to a demoted primary is
lost when it resyncs, and the next refresh of the chain would fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests

from jwtauth.store import FamilySpec, RefreshStore
from jwtauth.store.connection import connect
from jwtauth.store.sentinel import RECHECK_SECONDS
from tests.faults import calls
from tests.faults.redisproc import SERVICE, Farm, RedisProcess, wait_until
from tests.helpers import PEPPER

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

PREFIX = "jwtauth-fault:"


@dataclass
class Topology:
    primary: RedisProcess
    replicas: list[RedisProcess]
    sentinels: list[RedisProcess]

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(s.address for s in self.sentinels) + "/" + SERVICE

    def master_port(self) -> int:
        with self.sentinels[0].client() as conn:
            _, port = conn.sentinel_get_master_addr_by_name(SERVICE)
            return int(port)

    def by_port(self, port: int) -> RedisProcess:
        return next(p for p in (self.primary, *self.replicas) if p.port == port)


@pytest.fixture
def topology(redis_farm: Farm) -> Iterator[Topology]:
    """Start a primary, two replicas and three Sentinels that know each other."""
    primary = redis_farm.server()
    replicas = [redis_farm.replica_of(primary) for _ in range(2)]
    sentinels = [redis_farm.sentinel(primary) for _ in range(3)]

    def settled() -> bool:
        for sentinel in sentinels:
            with sentinel.client() as conn:
                state = conn.sentinel_master(SERVICE)
                if int(state["num-other-sentinels"]) != 2 or int(state["num-slaves"]) != 2:
                    return False
        return True

    wait_until(settled, timeout=10, what="three Sentinels that see each other and both replicas")
    yield Topology(primary, replicas, sentinels)


def generation(node: RedisProcess, family_id: str) -> int | None:
    """Return the family's generation as stored on `node` (None if it has no such family)."""
    with node.client() as conn:
        value = conn.hget(f"{PREFIX}{{f:{family_id}}}", "gen")
        return int(value) if value is not None else None


def rotate(base: str, token: str, *, within: float) -> dict[str, Any]:
    """Refresh `token`, retrying the same token after a 503 (what a client does) until `within`."""

    def attempt() -> requests.Response | None:
        response = calls.refresh(base, token)
        if response.status_code == 503:
            calls.assert_unavailable(response)
            return None
        return response

    return calls.ok(calls.until(attempt, timeout=within, what="a refresh through the failover"))


def replicated(primary: RedisProcess) -> None:
    """Wait until every replica acknowledged what the primary holds (WAIT 2, 2 s)."""
    with primary.client() as conn:
        assert conn.execute_command("WAIT", 2, 2000) == 2


def test_refresh_chain_survives_manual_and_automatic_failover(
    topology: Topology, serve: Callable[..., Any]
) -> None:
    env = {"JWTAUTH_REDIS_URL": topology.url, "JWTAUTH_REDIS_PREFIX": PREFIX}
    with serve(workers=2, env=env) as server:
        body = calls.ok(calls.password(server.base))
        family = body["refresh_token"].split(".")[0]
        for _ in range(3):
            body = calls.ok(calls.refresh(server.base, body["refresh_token"]))
        assert generation(topology.primary, family) == 4
        replicated(topology.primary)

        # 1. Manual failover: the old primary stays up (and writable) until Sentinel demotes it.
        old = topology.primary
        with topology.sentinels[0].client() as conn:
            assert conn.execute_command("SENTINEL FAILOVER", SERVICE)
        calls.until(lambda: topology.master_port() != old.port, timeout=10, what="a new primary")
        new = topology.by_port(topology.master_port())
        time.sleep(RECHECK_SECONDS + 0.1)  # every worker has asked the Sentinels again
        for expected in range(5, 9):
            body = rotate(server.base, body["refresh_token"], within=2)
            assert generation(new, family) == expected, "the rotation did not land on the new primary"
        assert (generation(old, family) or 0) < 8
        old.kill()  # nothing may depend on the demoted primary
        body = rotate(server.base, body["refresh_token"], within=2)
        assert generation(new, family) == 9

        # 2. The new primary dies: Sentinel notices (down-after 1 s), elects the last replica.
        last = next(r for r in topology.replicas if r is not new)
        with new.client() as conn:
            assert conn.execute_command("WAIT", 1, 2000) == 1
        new.kill()
        body = rotate(server.base, body["refresh_token"], within=10)  # 503s until the election
        assert generation(last, family) == 10
        for expected in (11, 12):
            body = rotate(server.base, body["refresh_token"], within=2)
            assert generation(last, family) == expected
        # New logins work too, and the introspection of the newest token says active.
        calls.ok(calls.password(server.base))
        verdict = calls.timed(
            "POST", server.base + "/api/v1/introspect", data={"token": body["refresh_token"]}, auth=calls.AUTH
        )
        assert verdict.json()["active"] is True


def test_readonly_from_a_demoted_primary_leads_to_the_new_one(topology: Topology) -> None:
    # An operator demotes the primary by hand (REPLICAOF, which does not drop clients the way
    # Sentinel does): the pooled connection now gets READONLY. redis-py's Sentinel connection
    # turns that into a ConnectionError and asks the Sentinels again; one retry then writes to
    # the new primary, so the caller sees no error at all.
    client = connect(topology.url)
    store = RefreshStore(client, pepper=PEPPER, prefix=PREFIX)
    spec = FamilySpec(
        client_id="testclient", subject="u", scope="read", audience=("https://api.example.com",),
        auth_time=time.time(), now=time.time(), absolute_ttl=600, idle_ttl=600,
    )  # fmt: skip
    issued = store.create(spec)
    replicated(topology.primary)
    old = topology.primary
    with topology.sentinels[0].client() as conn:
        assert conn.execute_command("SENTINEL FAILOVER", SERVICE)
    calls.until(lambda: topology.master_port() != old.port, timeout=10, what="a new primary")
    new = topology.by_port(topology.master_port())
    with old.client() as conn:
        conn.execute_command("REPLICAOF", "127.0.0.1", new.port)
        with pytest.raises(redis.exceptions.ReadOnlyError):
            conn.set(PREFIX + "probe", "1")
    # Only READONLY may lead this client to the new primary: the periodic check is not due.
    client.connection_pool._next_check = time.monotonic() + 3600
    assert client.connection_pool.master_address == ("127.0.0.1", old.port)
    rotated = store.rotate(issued.token, client_id="testclient", now=time.time(), idle_ttl=600)
    assert rotated.status.value == "ok" and rotated.token
    assert client.connection_pool.master_address == ("127.0.0.1", new.port)
    assert generation(new, issued.family_id) == 2
    client.close()
