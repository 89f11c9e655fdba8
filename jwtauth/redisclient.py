"""redis-py clients for the store: scripts that survive a lost script cache, a lazy Cluster."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisClusterException
from redis.typing import ScriptTextT


class StoreScript(Script):
    """A Lua script that still runs when the server loses its script cache at any moment.

    redis-py answers one NOSCRIPT by SCRIPT LOAD and EVALSHA again. A second NOSCRIPT came back
    as a 500 when the server changed in between: the load went to a demoted primary and the
    retry that followed READONLY reached the new one, whose cache is empty (scripts are not
    replicated). Then EVAL sends the body itself, which cannot miss.
    """

    def __call__(
        self,
        keys: Sequence[Any] | None = None,
        args: Iterable[Any] | None = None,
        client: Any = None,
    ) -> Any:
        try:
            return super().__call__(keys, args, client)
        except NoScriptError:
            target: Any = client if client is not None else self.registered_client
            return target.eval(self.script, len(keys or ()), *(keys or ()), *(args or ()))


class StoreRedis(redis.Redis):
    """A Redis client (standalone or Sentinel) whose scripts are StoreScripts."""

    def register_script(self, script: ScriptTextT) -> StoreScript:
        return StoreScript(self, script)


class StoreCluster(RedisCluster):
    """A Redis Cluster client whose scripts are StoreScripts."""

    def register_script(self, script: ScriptTextT) -> StoreScript:
        return StoreScript(self, script)


class LazyCluster:
    """Stand in for a RedisCluster that is built on first use, and again until that succeeds.

    RedisCluster asks the nodes for the slot map while it is built, so building it at start
    made a worker fail to boot while the cluster was down: no client_credentials, no JWKS.
    Until a build succeeds, every call raises the RedisClusterException of "no reachable
    node", which the app answers with a 503.
    """

    def __init__(self, build: Callable[[], RedisCluster]) -> None:
        self._build = build
        self._client: RedisCluster | None = None
        self._building = threading.Lock()

    def connected(self) -> RedisCluster:
        """Return the cluster client, building it now if needed."""
        client = self._client
        if client is not None:
            return client
        # One thread builds; the others answer at once rather than queue behind its timeouts.
        if not self._building.acquire(blocking=False):
            raise RedisClusterException("Redis Cluster cannot be connected yet: another thread is trying")
        try:
            if self._client is None:
                self._client = self._build()
            return self._client
        finally:
            self._building.release()

    def register_script(self, script: ScriptTextT) -> StoreScript:
        """Register without connecting: the script's calls go through this stand-in."""
        # As bytes, so Script needs no encoder from a client that may not exist yet.
        body = script.encode() if isinstance(script, str) else script
        return StoreScript(self, body)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connected(), name)
