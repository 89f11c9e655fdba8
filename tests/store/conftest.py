"""Run every store test on fakeredis (with Lua), a real Redis and, opt-in, a Redis Cluster."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
import redis

from tests.support import REDIS_URL, need

# Opt-in: also run every store test on a Redis Cluster (e.g. redis://127.0.0.1:7000/).
CLUSTER_URL = os.environ.get("JWTAUTH_TEST_REDIS_CLUSTER_URL")


@dataclass(frozen=True)
class Backend:
    """A client plus the key prefix that this test alone writes under."""

    client: Any
    prefix: str
    kind: str  # "fakeredis", "redis" or "cluster"

    def key_names(self) -> list[bytes]:
        """Return every key under this test's prefix."""
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", self.prefix) + "*"
        return sorted(self.client.scan_iter(match=pattern, count=1000))

    def raw_bytes(self) -> list[bytes]:
        """Return every key name and every stored byte string (fields, members, values)."""
        out: list[bytes] = []
        for key in self.key_names():
            out.append(key)
            kind = self.client.type(key)
            if kind == b"string":
                out.append(self.client.get(key))
            elif kind == b"hash":
                for field, value in self.client.hgetall(key).items():
                    out += [field, value]
            elif kind == b"list":
                out += self.client.lrange(key, 0, -1)
            elif kind == b"zset":
                out += [member for member, _ in self.client.zrange(key, 0, -1, withscores=True)]
            elif kind == b"set":
                out += list(self.client.smembers(key))
            else:
                raise AssertionError(f"unexpected key type {kind!r} for {key!r}")
        return out


def _real_client() -> Any:
    client = redis.Redis.from_url(
        REDIS_URL, decode_responses=False, socket_connect_timeout=0.5, socket_timeout=5
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        need(False, f"no Redis at {REDIS_URL}: {exc}")  # skips, or fails under CI=true
    return client


def _cluster_client(url: str) -> Any:
    try:
        client = redis.cluster.RedisCluster.from_url(url, decode_responses=False)
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        need(False, f"no Redis Cluster at {url}: {exc}")
    return client


_KINDS = [
    pytest.param("fakeredis", id="fakeredis"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]
if CLUSTER_URL:
    _KINDS.append(pytest.param("cluster", id="redis-cluster", marks=pytest.mark.redis))


@pytest.fixture(params=_KINDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Yield a backend with a prefix of its own; delete exactly that prefix's keys after."""
    kind: str = request.param
    if kind == "redis":
        client = _real_client()
    elif kind == "cluster":
        assert CLUSTER_URL is not None
        client = _cluster_client(CLUSTER_URL)
    else:
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=False)
    env = Backend(client=client, prefix=f"jwtauth-test:{uuid.uuid4().hex}:", kind=kind)
    try:
        yield env
    finally:
        for key in env.key_names():  # one by one: on Cluster the keys span many slots
            client.delete(key)
        client.close()
