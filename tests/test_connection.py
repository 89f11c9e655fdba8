"""Tests for jwtauth.store.connection: JWTAUTH_REDIS_URL forms, the embedded store, ping."""

from __future__ import annotations

import gc
import threading
import time
import uuid
from typing import Any

import pytest
import redis
from redis.exceptions import RedisClusterException
from redis.sentinel import SentinelConnectionPool

from jwtauth.store.connection import (
    MAX_CONNECTIONS,
    StoreURLError,
    _hosts,
    connect,
    embedded,
    ping,
    unavailable,
)
from jwtauth.store.redisclient import in_order
from tests.support import REDIS_URL, free_port, need


def kwargs(client: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.connection_pool.connection_kwargs
    return result


def test_redis_url() -> None:
    client = connect("redis://:s3cret@cache.internal:6380/2")
    assert isinstance(client, redis.Redis)
    pool = client.connection_pool
    assert pool.connection_class is redis.Connection
    assert pool.max_connections == MAX_CONNECTIONS
    got = kwargs(client)
    assert (got["host"], got["port"], got["db"], got["password"]) == ("cache.internal", 6380, 2, "s3cret")
    # A dead store must be a quick 503: short timeouts.
    assert got["socket_connect_timeout"] <= 0.5 and got["socket_timeout"] <= 1


def test_rediss_url_uses_tls() -> None:
    client = connect("rediss://user:pw@cache.internal:6380/0")
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert (kwargs(client)["username"], kwargs(client)["password"]) == ("user", "pw")


def test_unix_socket_url() -> None:
    client = connect("unix:///run/redis/redis.sock?db=3")
    assert client.connection_pool.connection_class is redis.UnixDomainSocketConnection
    assert kwargs(client)["path"] == "/run/redis/redis.sock" and kwargs(client)["db"] == 3


def test_sentinel_url() -> None:
    client = connect("redis+sentinel://u:p%40ss@h1:26379,h2:26380/mymaster?db=1")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster" and pool.is_master
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(s["host"], s["port"]) for s in sentinels] == [("h1", 26379), ("h2", 26380)]
    got = kwargs(client)
    assert (got["username"], got["password"], got["db"]) == ("u", "p@ss", 1)


def test_sentinel_default_port_and_ipv6() -> None:
    pool = connect("redis+sentinel://h1,[::1],[::1]:26390/cache").connection_pool
    hosts = [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in pool.sentinel_manager.sentinels
    ]
    assert hosts == [("h1", 26379), ("::1", 26379), ("::1", 26390)]


def test_sentinel_down_fails_fast() -> None:
    # Every Sentinel unreachable: a quick ConnectionError (→ 503), not seconds of backoff.
    client = connect(f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/mymaster")
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.set("jwtauth-test:never", 1)
    assert not ping(client)
    assert time.monotonic() - started < 2


def test_cluster_url_with_no_reachable_node() -> None:
    # Built lazily, so a worker starts while the cluster is down; each call fails quickly
    # with the error the app answers as 503, and ping says not ready.
    client = connect(f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(RedisClusterException) as info:
        client.hgetall("jwtauth-test:{f:x}")
    assert unavailable(info.value)
    assert not ping(client)
    assert time.monotonic() - started < 2


def test_an_outage_reply_is_an_outage_inside_a_pipeline_too() -> None:
    # redis-py puts the command before a reply it raises from a pipeline (a traced client
    # runs scripts in order through one): a busy server is still a 503, not a 500.
    busy = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT."
    assert unavailable(redis.ResponseError(busy))
    piped = "Command # 2 (EVALSHA abc 1 k) of pipeline caused error: "
    assert unavailable(redis.ResponseError(piped + busy))
    assert not unavailable(redis.ResponseError(piped + "ERR a bug of ours"))
    assert not unavailable(redis.ResponseError("ERR Command # 1 of pipeline caused error: BUSY is only text"))


def test_cluster_is_built_from_every_host(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_cluster(**kw: Any) -> str:
        seen.update(kw)
        return "cluster"

    monkeypatch.setattr("jwtauth.store.connection.StoreCluster", fake_cluster)
    lazy = connect("rediss+cluster://:pw@n1:7000,n2,[::1]:7002")
    assert not seen  # nothing is built (or connected) before the first call
    assert lazy.connected() == "cluster"
    assert [(n.host, n.port) for n in seen["startup_nodes"]] == [("n1", 7000), ("n2", 6379), ("::1", 7002)]
    assert seen["ssl"] is True and seen["password"] == "pw"


@pytest.mark.parametrize(
    ("netloc", "default", "expected"),
    [
        ("h1:26379,h2:26380", 26379, [("h1", 26379), ("h2", 26380)]),
        ("user:pw@h1:1,h2:2", 9, [("h1", 1), ("h2", 2)]),
        ("h1", 26379, [("h1", 26379)]),
        ("[::1]:7000", 6379, [("::1", 7000)]),
        ("[::1]", 6379, [("::1", 6379)]),
        (" h1:1 , h2:2 ", 9, [("h1", 1), ("h2", 2)]),
    ],
)
def test_hosts(netloc: str, default: int, expected: list[tuple[str, int]]) -> None:
    assert _hosts(netloc, default) == expected


@pytest.mark.parametrize("netloc", ["h1:port", "h1:99999", "[::1", "h1:-1"])
def test_hosts_bad(netloc: str) -> None:
    with pytest.raises(StoreURLError):
        _hosts(netloc, 26379)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://cache:6379", "unsupported scheme 'http'"),
        ("memcached://cache", "unsupported scheme 'memcached'"),
        ("cache.internal:6379", "unsupported scheme"),
        ("redis+sentinel://h1:26379", "names the service"),
        ("redis+sentinel://h1:26379/", "names the service"),
        ("redis+sentinel://h1:26379/m?db=one", "db must be a number"),
        ("redis+sentinel://h1:port/m", "bad host or port"),
        ("redis://cache:port/0", "cannot parse"),
        ("redis://cache:99999/0", "cannot parse"),
        ("redis://cache/0?socket_timeout=soon", "cannot parse"),
        ("redis://[::1/0", "not a valid URL"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message.replace("(", r"\(")):
        connect(url)


def test_unsupported_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(StoreURLError) as info:
        connect("http://cache")
    for scheme in ("redis://", "rediss://", "redis+sentinel://", "redis+cluster://"):
        assert scheme in str(info.value)


def test_bad_url_message_never_shows_the_password() -> None:
    # redis-py's own message for this typo quotes the password as the port.
    with pytest.raises(StoreURLError) as info:
        connect("redis://admin:hunter2")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("url", [None, ""])
def test_embedded_store(url: str | None) -> None:
    client = connect(url)
    assert ping(client)
    client.set("k", "v")
    # The same Lua scripts run here as on a real Redis.
    assert client.eval("return redis.call('GET', KEYS[1])", 1, "k") == b"v"
    assert connect(url).get("k") is None  # each embedded store is its own server


def test_embedded_is_fresh() -> None:
    a, b = embedded(), embedded()
    a.set("x", 1)
    assert b.get("x") is None


def test_ping_is_false_and_quick_on_a_dead_store() -> None:
    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    assert ping(client) is False
    assert time.monotonic() - started < 1


def test_ping_never_raises() -> None:
    class Broken:
        def ping(self) -> bool:
            raise OSError("socket gone")

    assert ping(Broken()) is False


@pytest.mark.redis
def test_real_redis() -> None:
    client = connect(REDIS_URL)
    need(ping(client), f"no Redis at {REDIS_URL}")
    key = f"jwtauth-test:conn:{time.time_ns()}"
    try:
        client.set(key, "1", ex=10)
        assert client.get(key) == b"1"
    finally:
        client.delete(key)


def test_ping_is_false_when_no_cluster_node_answers() -> None:
    # RedisClusterException is not a RedisError: /readyz/store must still say 503, not 500.
    class NoNode:
        def ping(self) -> bool:
            raise RedisClusterException("Redis Cluster cannot be connected. Please provide at least one")

    assert ping(NoNode()) is False


class ScriptedConnection:
    """A pooled connection whose replies are scripted: a value is returned, an exception raised."""

    def __init__(self, client: Any, replies: list[Any]) -> None:
        self.retry = client.connection_pool.connection_kwargs["retry"]
        self.replies, self.sent, self.disconnects = replies, [], 0

    def send_command(self, *args: Any) -> None:
        self.sent.append(args)

    def pack_commands(self, commands: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return commands

    def send_packed_command(self, packed: list[tuple[Any, ...]]) -> None:
        self.sent.extend(packed)

    def read_response(self) -> Any:
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def disconnect(self) -> None:
        self.disconnects += 1


def scripted(
    monkeypatch: pytest.MonkeyPatch, client: Any, replies: list[Any]
) -> tuple[ScriptedConnection, list[Any]]:
    """Answer the client's script calls from `replies`, on the connection a Sentinel client
    checks out of its pool or a standalone client keeps for the calling thread."""
    conn = ScriptedConnection(client, replies)
    released: list[Any] = []
    monkeypatch.setattr(client.connection_pool, "get_connection", lambda *a, **k: conn)
    monkeypatch.setattr(client.connection_pool, "release", released.append)
    monkeypatch.setattr(client, "_thread_connection", lambda: conn)
    return conn, released


def test_a_script_the_server_lost_is_sent_by_its_body(monkeypatch: pytest.MonkeyPatch) -> None:
    # After a restart or a failover the cache is empty: NOSCRIPT, then EVAL the body (which
    # caches it again), on the same connection, never a 500.
    client = connect("redis://127.0.0.1:1/0")
    script = client.register_script("return 1")
    conn, released = scripted(
        monkeypatch, client, [redis.exceptions.NoScriptError("No matching script"), 7]
    )
    assert script(keys=["k"], args=["a"]) == 7
    assert conn.sent == [("EVALSHA", script.sha, 1, "k", "a"), ("EVAL", "return 1", 1, "k", "a")]
    assert released == []  # the thread's own connection: nothing checked out of the pool


def test_a_script_is_retried_once_on_a_new_connection_after_a_connection_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A dropped connection (a restarted server, Sentinel's READONLY) is retried once after
    # reconnecting; the scripts are written so that running twice is harmless.
    client = connect("redis://127.0.0.1:1/0")
    script = client.register_script("return 1")
    conn, released = scripted(monkeypatch, client, [redis.ConnectionError("reset"), 5])
    assert script(keys=["k"], args=[]) == 5
    assert len(conn.sent) == 2 and conn.disconnects == 1 and released == []
    conn, _ = scripted(
        monkeypatch, client, [redis.ConnectionError("reset"), redis.ConnectionError("reset")]
    )
    with pytest.raises(redis.ConnectionError):
        script(keys=["k"], args=[])
    assert len(conn.sent) == 2 and conn.disconnects == 2


def test_a_script_is_never_retried_after_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first attempt may have run: a request waits at most one socket timeout, then 503.
    client = connect("redis://127.0.0.1:1/0")
    script = client.register_script("return 1")
    conn, _ = scripted(monkeypatch, client, [redis.TimeoutError("slow"), 5])
    with pytest.raises(redis.TimeoutError):
        script(keys=["k"], args=[])
    assert len(conn.sent) == 1


def test_a_sentinel_script_is_released_to_the_pool_that_rechecks_the_primary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The Sentinel pool drops connections to a demoted primary at checkout and release.
    client = connect("redis+sentinel://127.0.0.1:1/mymaster")
    script = client.register_script("return 1")
    conn, released = scripted(monkeypatch, client, [redis.ConnectionError("READONLY"), 5])
    monkeypatch.setattr(client, "_thread_connection", lambda: pytest.fail("not the pool's"))
    assert script(keys=["k"], args=[]) == 5
    assert released == [conn] and conn.disconnects == 1


def test_each_thread_runs_scripts_on_a_connection_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    client = connect("redis://127.0.0.1:1/0")
    monkeypatch.setattr(client.connection_pool, "get_connection", lambda *a, **k: pytest.fail("pooled"))
    mine = client._thread_connection()
    assert client._thread_connection() is mine  # kept for the thread's later calls
    # Made with the pool's settings: its address, its one retry.
    assert mine.host == "127.0.0.1" and mine.port == 1 and mine.retry.get_retries() == 1
    assert not mine.maint_notifications_config.enabled  # the pool's notices cannot reach it
    others: list[Any] = []
    worker = threading.Thread(target=lambda: others.append(client._thread_connection()))
    worker.start()
    worker.join()
    assert others[0] is not mine


def test_a_thread_that_ends_closes_its_connection_at_once(real_redis: tuple[Any, str]) -> None:
    # granian ends idle request threads (30 s): their connections must not wait for the cycle
    # collector, each holding a descriptor and a client slot on the server.
    client = connect(REDIS_URL)
    script = client.register_script("return 1")
    opened: list[Any] = []

    def work() -> None:
        assert script(keys=["k"], args=[]) == 1
        opened.append(client._thread_connection())

    gc.disable()
    try:
        for _ in range(3):
            worker = threading.Thread(target=work)
            worker.start()
            worker.join()
        assert len(opened) == 3 and all(conn._sock is None for conn in opened)
    finally:
        gc.enable()


def test_sentinel_clients_recheck_the_primary_and_reconnect_through_sentinel() -> None:
    from jwtauth.store.redisclient import StoreRedis
    from jwtauth.store.sentinel import SentinelConnection, SentinelPool, SentinelSSLConnection

    plain = connect("redis+sentinel://h1:26379/mymaster")
    assert isinstance(plain, StoreRedis) and isinstance(plain.connection_pool, SentinelPool)
    assert plain.connection_pool.connection_class is SentinelConnection
    tls = connect("rediss+sentinel://h1:26379/mymaster")
    assert tls.connection_pool.connection_class is SentinelSSLConnection
    # One immediate retry after a connection error (a READONLY reply becomes one), none after
    # a timeout: a request waits at most one socket timeout.
    retry: Any = getattr(plain.connection_pool.make_connection(), "retry")  # noqa: B009  # untyped
    assert retry.get_retries() == 1


def test_the_embedded_store_sweeps_expired_keys_on_its_own() -> None:
    # A long-running `make run` stays flat in memory: keys nobody touches again still go.
    client = embedded(sweep_every=0.05)
    for i in range(2000):
        client.set(f"jwtauth:code:{i}", "x", px=800)
    keys = client.connection_pool.connection_kwargs["server"].dbs[0]._dict
    assert len(keys) > 1000
    deadline = time.monotonic() + 5
    while keys and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(keys) == 0  # swept without a single read of those keys


def test_scripts_in_order_share_one_write_and_every_reply_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    client = connect("redis://127.0.0.1:1/0")
    first, second = client.register_script("return 1"), client.register_script("return 2")
    conn, released = scripted(monkeypatch, client, [1, 2])
    assert in_order(client, (first, ["a"], ["x"]), (second, ["b"], [])) == [1, 2]
    assert conn.sent == [("EVALSHA", first.sha, 1, "a", "x"), ("EVALSHA", second.sha, 1, "b")]
    assert released == []  # the thread's own connection
    # A lost connection sends them all again, once.
    conn, _ = scripted(monkeypatch, client, [redis.ConnectionError("reset"), 1, 2])
    assert in_order(client, (first, ["a"], []), (second, ["b"], [])) == [1, 2]
    assert len(conn.sent) == 4 and conn.disconnects == 1 and conn.replies == []


def test_an_error_reply_in_order_is_raised_after_every_reply_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # A reply left unread would be taken by the thread's next call as its own.
    client = connect("redis://127.0.0.1:1/0")
    first, second = client.register_script("return 1"), client.register_script("return 2")
    conn, _ = scripted(monkeypatch, client, [redis.ResponseError("ERR boom"), 2])
    with pytest.raises(redis.ResponseError, match="boom"):
        in_order(client, (first, ["a"], []), (second, ["b"], []))
    assert conn.replies == [] and conn.disconnects == 0


def test_scripts_in_order_on_real_redis_load_themselves_and_keep_replies_in_step(
    real_redis: tuple[Any, str],
) -> None:
    _, prefix = real_redis
    client = connect(REDIS_URL)
    # Bodies no server has seen: the first round trip gets NOSCRIPT for both, and in_order
    # runs them one by one (each loads itself); the next goes as one write.
    tag = uuid.uuid4().hex
    put = client.register_script(f"-- {tag}\nredis.call('SET', KEYS[1], ARGV[1], 'PX', 60000) return ARGV[1]")
    get = client.register_script(f"-- {tag}\nreturn redis.call('GET', KEYS[1])")
    key = prefix + "in-order"
    assert in_order(client, (put, [key], ["one"]), (get, [key], [])) == [b"one", b"one"]
    assert in_order(client, (put, [key], ["two"]), (get, [key], [])) == [b"two", b"two"]
    assert get(keys=[key], args=[]) == b"two"  # the thread's connection holds no stray reply
