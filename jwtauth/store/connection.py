"""Turn JWTAUTH_REDIS_URL into a redis-py client: Redis, TLS, Sentinel, Cluster, or embedded."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.exceptions import (
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.retry import Retry

from jwtauth.store.redisclient import LazyCluster, StoreCluster, StoreRedis
from jwtauth.store.sentinel import NewestSentinel, SentinelPool

# Well under a second: a dead Redis must turn into a quick 503, never a hung worker.
TIMEOUTS: dict[str, Any] = {
    "socket_connect_timeout": 0.25,
    "socket_timeout": 0.5,
    "health_check_interval": 10,
    "retry_on_timeout": False,
}
MAX_CONNECTIONS = 32


def _one_retry() -> Retry:
    """Retry a command once, at once, after a connection error (never after a timeout).

    The retry reconnects: to the restarted server, or (Sentinel) to the primary named after a
    READONLY reply. It is safe because every store operation may run twice: a rotation seen
    again is a replay that derives the same successor, a code taken twice is "already used"
    (as the client's own retry would be), creates and revocations set the same values. A
    timeout is not retried: the bound on a request's wait stays one socket timeout.
    """
    return Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))


# Every exception a store call can raise. RedisClusterException is not a RedisError: redis-py
# raises it when no cluster node can be reached at all.
STORE_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)
# Outages: the store is down, restarting, loading, failing over, resharding or full. A client
# can only retry them: 503 temporarily_unavailable with Retry-After (RFC 9110 §15.6.4).
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # also LOADING, a failed Sentinel lookup, "max number of clients"
    redis.TimeoutError,
    ReadOnlyError,  # a demoted primary, until the Sentinels name the new one
    OutOfMemoryError,  # maxmemory reached
    ClusterError,  # CLUSTERDOWN, MASTERDOWN, redirections exhausted during a resharding
    TryAgainError,  # a slot migrating under a multi-key script
    SlotNotCoveredError,  # the cluster lost every node of a slot
)
# Outage replies that redis-py leaves as a plain ResponseError.
_UNAVAILABLE_REPLIES = ("BUSY ", "MISCONF ", "NOREPLICAS ", "UNBLOCKED ")
# What redis-py puts before a reply it raises from a pipeline (a traced client runs its
# scripts in order through one): the reply itself follows it.
_PIPELINE_REPLY = " of pipeline caused error: "
# redis-py's words when no cluster node answers; its other RedisClusterExceptions are bugs
# (keys of one call in different slots) and stay 500.
_NO_CLUSTER_NODE = "Redis Cluster cannot be connected"


# A Sentinel URL's TLS options, as redis-py names them (the CA to trust, the client certificate).
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


class StoreURLError(ValueError):
    """The store URL is not one of the supported forms."""


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    out = []
    for item in netloc.rsplit("@", 1)[-1].split(","):
        try:
            # RFC 3986 §3.2.2: urlsplit knows "[::1]" from "[::1]:26379" and "h" from "h:26379".
            parts = urlsplit("//" + item.strip())
            out.append((parts.hostname or "127.0.0.1", parts.port or default_port))
        except ValueError:
            raise StoreURLError(f"bad host or port in {item!r}") from None
    return out


SWEEP_SECONDS = 10.0  # how often the embedded store drops its expired keys


def embedded(sweep_every: float = SWEEP_SECONDS) -> Any:
    """Return the in-process store: the same Redis code on a fakeredis server with Lua.

    fakeredis drops an expired key only when something touches it, and a code or a sign-in
    counter nobody asks for again would stay in memory for good: a daemon thread asks for
    DBSIZE every `sweep_every` seconds, which sweeps every due key (as Redis's own active expiry
    does), so a long-running `make run` stays flat in memory.
    """
    import fakeredis

    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())

    def sweep() -> None:
        while True:
            time.sleep(sweep_every)
            with contextlib.suppress(Exception):  # a sweep must never end the thread
                client.dbsize()

    threading.Thread(target=sweep, daemon=True, name="jwtauth-embedded-sweep").start()
    return client


def connect(url: str | None) -> Any:
    """Return a client for the URL; None means the embedded store."""
    if not url:
        return embedded()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 literal
        raise StoreURLError("not a valid URL") from None
    if parts.scheme in ("redis", "rediss", "unix"):
        return _standalone(url)
    if parts.scheme in ("redis+sentinel", "rediss+sentinel"):
        return _sentinel(parts)
    if parts.scheme in ("redis+cluster", "rediss+cluster"):
        return _cluster(parts)
    raise StoreURLError(
        f"unsupported scheme {parts.scheme!r}: use redis://, rediss://, redis+sentinel:// or redis+cluster://"
    )


def _credentials(parts: SplitResult) -> tuple[str | None, str | None]:
    """Return the URL's username and password, percent-decoded."""
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return username, password


def _standalone(url: str) -> StoreRedis:
    """Connect to one Redis server (redis://, rediss://, unix://)."""
    try:
        pool = redis.ConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, retry=_one_retry(), **TIMEOUTS
        )
    except ValueError:
        # Not the library's text: for "redis://user:secret" it quotes the password as the port.
        raise StoreURLError("cannot parse the host, port, database or options") from None
    return StoreRedis(connection_pool=pool)


def _tls_options(parts: SplitResult, tls: bool) -> dict[str, Any]:
    """Return the TLS options of a Sentinel URL's query (CA, client certificate), hostname checked.

    Every TLS connection checks the server's hostname (redis-py ≥ 6 does by default; said here
    so no floor or default can undo it).
    """
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"db", *_TLS_OPTIONS})
    if unknown:
        raise StoreURLError(f"unknown option {unknown[0]!r} (known: db, {', '.join(_TLS_OPTIONS)})")
    options: dict[str, Any] = {}
    for name in _TLS_OPTIONS:
        values = query.get(name)
        if values is not None and (len(values) != 1 or not values[0]):
            raise StoreURLError(f"{name} must be given once, with a file path")
        if values is not None:
            options[name] = values[0]
    if options and not tls:
        raise StoreURLError("TLS options need a rediss+sentinel:// URL")
    return {**options, "ssl_check_hostname": True} if tls else options


def _sentinel(parts: SplitResult) -> Any:
    """Connect to the primary that Sentinel names for the URL's service.

    The Sentinels get what the primary gets: the URL's username and password, and TLS with its
    options under rediss+sentinel:// (issue 18: lookups went out in plaintext, unauthenticated).
    """
    service = parts.path.strip("/").split("/")[0]
    if not service:
        raise StoreURLError("a Sentinel URL names the service: redis+sentinel://h:26379/mymaster")
    try:
        db = int(parse_qs(parts.query).get("db", ["0"])[0])
    except ValueError:
        raise StoreURLError("db must be a number: ?db=0") from None
    tls = parts.scheme.startswith("rediss")
    options = _tls_options(parts, tls)
    username, password = _credentials(parts)
    sentinel = NewestSentinel(  # type: ignore[no-untyped-call]
        _hosts(parts.netloc, 26379),
        # redis.Redis retries with exponential backoff by default: with every Sentinel
        # down, each request hung ~9 s before failing. discover_master already tries every
        # Sentinel in turn, so one attempt each is enough to fail fast into a 503.
        sentinel_kwargs={
            "socket_connect_timeout": 0.25,
            "socket_timeout": 0.5,
            "retry": Retry(NoBackoff(), 0),
            "username": username,
            "password": password,
            "ssl": tls,
            **options,
        },
        password=password,
        username=username,
        db=db,
        ssl=tls,
        **options,
        retry=_one_retry(),
        **TIMEOUTS,
    )
    # master_for re-discovers the primary on connection errors and READONLY replies (its
    # connections turn READONLY into a ConnectionError, which the one retry follows).
    return sentinel.master_for(  # type: ignore[no-untyped-call]
        service,
        redis_class=StoreRedis,
        connection_pool_class=SentinelPool,
        max_connections=MAX_CONNECTIONS,
    )


def _cluster(parts: SplitResult) -> LazyCluster:
    """Return a Redis Cluster client that connects on first use."""
    nodes = [ClusterNode(h, p) for h, p in _hosts(parts.netloc, 6379)]  # type: ignore[no-untyped-call]
    tls = parts.scheme.startswith("rediss")
    username, password = _credentials(parts)

    def cluster() -> StoreCluster:
        return StoreCluster(
            startup_nodes=nodes,
            password=password,
            username=username,
            ssl=tls,
            max_connections=MAX_CONNECTIONS,  # per node
            # redis-py's default is 10 retries with backoff, and 0.25 s of sleep after each
            # CLUSTERDOWN: ~3 s per request while a node fails over, 5+ s with a frozen
            # node. One retry follows a reconfigured cluster and keeps the 503 quick.
            retry=Retry(NoBackoff(), 1),
            socket_connect_timeout=TIMEOUTS["socket_connect_timeout"],
            socket_timeout=TIMEOUTS["socket_timeout"],
            health_check_interval=TIMEOUTS["health_check_interval"],
        )

    # RedisCluster connects while it is built: lazily, so a worker starts (and serves
    # client_credentials and JWKS) while no cluster node answers.
    return LazyCluster(cluster)


def ping(client: Any) -> bool:
    """Return whether the store answers, without ever raising."""
    try:
        return bool(client.ping())
    except (redis.RedisError, RedisClusterException, OSError):
        return False


def unavailable(exc: BaseException) -> bool:
    """Return whether a store error is an outage no client can fix (so 503, not 500)."""
    if isinstance(exc, UNAVAILABLE):
        return True
    if isinstance(exc, RedisClusterException):
        return str(exc).startswith(_NO_CLUSTER_NODE)
    if not isinstance(exc, redis.ResponseError):
        return False
    reply = str(exc)
    if reply.startswith("Command # ") and _PIPELINE_REPLY in reply:
        reply = reply.split(_PIPELINE_REPLY, 1)[1]
    return reply.startswith(_UNAVAILABLE_REPLIES)
