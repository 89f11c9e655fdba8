"""redis-py clients for the store: scripts that survive a lost script cache, a lazy Cluster.

Also the few facts every store shares: the client type, the key layout, how replies and
lifetimes are spelled, and how several stores' scripts share one round trip.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisClusterException, ResponseError
from redis.maint_notifications import MaintNotificationsConfig
from redis.sentinel import SentinelConnectionPool
from redis.typing import ScriptTextT

# Clients are created with decode_responses=False; the stores decode replies with `text`.
RedisClient: TypeAlias = redis.Redis | RedisCluster

# One call of a registered script: the script, its KEYS and its ARGV. Stores hand these to each
# other to run in one round trip (RefreshStore.create's `then`).
ScriptCall: TypeAlias = tuple[Any, list[str], list[str]]


def checked_prefix(prefix: str) -> str:
    """Return `prefix`, refusing braces: they would change the hash tag of every key."""
    if "{" in prefix or "}" in prefix:
        raise ValueError("prefix must not contain '{' or '}': it would change the hash tag")
    return prefix


def tagged_key(prefix: str, kind: str, name: str) -> str:
    """Return `{prefix}{<kind>:<name>}`: the braces make `<kind>:<name>` its hash tag.

    Keys that share a tag share a Redis Cluster slot, so one script may touch them all.
    """
    return f"{prefix}{{{kind}:{name}}}"


def text(value: object) -> str:
    """Return a reply as text (bytes are UTF-8: the stores write nothing else)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def ms(seconds: float) -> int:
    """Return a lifetime in whole milliseconds for PEXPIRE or PX: rounded up, at least 1."""
    return max(math.ceil(seconds * 1000), 1)


def is_standalone(client: Any) -> bool:
    """Return whether `client` is a standalone or Sentinel client, seen through a tracing wrapper.

    Those pipeline scripts and run one script over keys of different slots; a Cluster cannot.
    The wrapper (store/traced.py) is looked for in the instance's own attributes: asking a
    LazyCluster for a missing attribute would connect it.
    """
    return isinstance(getattr(client, "__dict__", {}).get("wrapped", client), redis.Redis)


def in_order(client: Any, *calls: ScriptCall) -> list[Any]:
    """Run idempotent scripts in this order, in one round trip where a pipeline can carry them.

    Redis runs a pipeline's commands in order on one connection, so the order holds either way.
    Redis Cluster cannot pipeline scripts of different slots (redis-py refuses EVALSHA in a
    cluster pipeline): there they run one after another, as they do after NOSCRIPT (a restart or
    failover emptied the script cache), through the scripts, which load themselves. Running a
    script again sets the same values, so a partial first attempt does no harm.
    """
    if isinstance(client, StoreRedis):
        try:
            return client.run_in_order(calls)
        except NoScriptError:
            pass
    elif is_standalone(client):  # a traced client: its pipeline is one span
        pipe = client.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        try:
            return list(pipe.execute())
        except NoScriptError:
            pass
    return [script(keys=keys, args=args) for script, keys, args in calls]


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
        target: Any = client if client is not None else self.registered_client
        if isinstance(target, StoreRedis):
            return target.run_script(self, keys or (), args or ())
        try:
            return super().__call__(keys, args, client)
        except NoScriptError:
            return target.eval(self.script, len(keys or ()), *(keys or ()), *(args or ()))


def _evalsha(conn: Any, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """Run `script` on `conn`: by its digest, or by its body when the server lost its cache."""
    conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
    try:
        return conn.read_response()
    except NoScriptError:
        # EVAL also caches the body again, so the next EVALSHA finds it (any server: after a
        # restart or a failover to a replica whose cache was never filled).
        conn.send_command("EVAL", script.script, len(keys), *keys, *args)
        return conn.read_response()


def _in_order(conn: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send `commands` in one write on `conn` and return their replies.

    Every reply is read before an error is raised, so no reply is left on the connection for
    the next call to take as its own.
    """
    conn.send_packed_command(conn.pack_commands(commands))
    replies: list[Any] = []
    failed: ResponseError | None = None
    for _ in commands:
        try:
            replies.append(conn.read_response())
        except ResponseError as exc:  # NOSCRIPT among them: in_order runs them one by one
            failed = failed or exc
    if failed is not None:
        raise failed
    return replies


def _retrying(conn: Any, work: Callable[[Any], Any]) -> Any:
    """Run `work` on `conn`, again on a new connection if this one was lost (its retry policy)."""
    return conn.retry.call_with_retry(lambda: work(conn), lambda _error: conn.disconnect())


class StoreRedis(redis.Redis):
    """A Redis client (standalone or Sentinel) whose scripts are StoreScripts, run lean."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._threads = threading.local()
        # A Sentinel pool asks for the primary at checkout and drops connections to a demoted
        # one (store/sentinel.py): its scripts keep going through it.
        self.owns_connections = not isinstance(self.connection_pool, SentinelConnectionPool)

    def register_script(self, script: ScriptTextT) -> StoreScript:
        return StoreScript(self, script)

    def run_script(self, script: Script, keys: Sequence[Any], args: Iterable[Any]) -> Any:
        """Run a script on the thread's own connection (Sentinel: a pooled one); one retry if it was lost.

        What `Redis.execute_command` does for one EVALSHA, without its per-command layers
        (Script's argument shuffling, deprecation wrappers, observability hooks, and the pool's
        checkout: its lock, its poll(2) for stray data and four metric updates per command).
        Together they cost about as much CPU as the round trip itself on a 2-core box, and every
        Redis grant is one or two script calls (bench/results.md). Health checks, Sentinel's
        re-discovery on connect and the retry policy are redis-py's, unchanged.
        """
        keys, args = tuple(keys), tuple(args)
        return self._on_connection(lambda conn: _evalsha(conn, script, keys, args))

    def run_in_order(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run scripts in order in one round trip: a pipeline without redis-py's Pipeline object,
        its pool checkout and its per-command bookkeeping. A lost connection runs them all again
        once (they are idempotent: in_order).
        """
        commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in calls]
        result: list[Any] = self._on_connection(lambda conn: _in_order(conn, commands))
        return result

    def _on_connection(self, work: Callable[[Any], Any]) -> Any:
        """Run `work` on the thread's own connection (Sentinel: a pooled one), once more on a new
        connection if this one was lost (the pool's retry policy)."""
        if self.owns_connections:
            return _retrying(self._thread_connection(), work)
        pool = self.connection_pool
        pooled: Any = pool.get_connection()  # redis-py's connection API is untyped
        try:
            return _retrying(pooled, work)
        finally:
            pool.release(pooled)

    def _thread_connection(self) -> Any:
        """Return the calling thread's connection, made with the pool's settings on first use.

        A request runs on one thread from start to end, so a connection owned by the thread is
        never shared and needs no lock or checkout. It is made outside the pool: a thread that
        ends takes its connection with it, where one checked out of the pool for good would stay
        listed there as in use. Outside the pool it cannot follow the pool's maintenance
        notices (Redis Enterprise's MOVING), so it does not ask for them: a moved endpoint
        drops it, and the retry reconnects. The pid guards a forked child from writing on its
        parent's socket.
        """
        owned = getattr(self._threads, "owned", None)
        if owned is None or owned.pid != os.getpid():
            pool = self.connection_pool
            settings = {**pool.connection_kwargs, "maint_notifications_config": _NO_MAINTENANCE_NOTICES}
            settings.pop("maint_notifications_pool_handler", None)
            owned = self._threads.owned = _Owned(pool.connection_class(**settings))
        return owned.conn


_NO_MAINTENANCE_NOTICES = MaintNotificationsConfig(enabled=False)


class _Owned:
    """A thread's connection, closed as soon as the thread ends.

    The connection sits in reference cycles with its own handlers, so on its own it would
    wait for the cycle collector, holding a descriptor and one of the server's client slots;
    this holder is in no cycle, so it goes with the thread's locals.
    """

    __slots__ = ("conn", "pid")

    def __init__(self, conn: Any) -> None:
        self.conn, self.pid = conn, os.getpid()

    def __del__(self) -> None:
        if self.pid == os.getpid():  # a forked child leaves its parent's socket alone
            with contextlib.suppress(Exception):
                self.conn.disconnect()


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
