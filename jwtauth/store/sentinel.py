"""Follow a Redis primary through Sentinel failovers without losing a write to the old one.

redis-py's Sentinel support, as of 8.1, leaves three gaps that lose or fail requests during a
failover; each class below closes one and says which.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import redis
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.utils import str_if_bytes

# Sentinel names a new primary at once, but redis-py asks only when it opens a connection.
RECHECK_SECONDS = 0.5


class NewestSentinel(Sentinel):
    """Ask every Sentinel and follow the newest configuration (the highest config-epoch).

    redis-py takes the first Sentinel whose SENTINEL MASTERS looks sane. During a failover
    that names the old primary, still writable, for seconds: the leader keeps the old address
    in its master record until every replica is reconfigured, and the other Sentinels learn
    the new one from hello messages. Writes sent to the old primary are lost when it is
    demoted. GET-MASTER-ADDR-BY-NAME names the promoted replica as soon as it is promoted, and
    the failover's epoch is higher, so the newest view wins once any reachable Sentinel has it.
    """

    def discover_master(self, service_name: str) -> tuple[str, int]:
        """Return the primary named by the Sentinel with the newest configuration."""
        newest: tuple[int, tuple[str, int]] | None = None
        refused = False
        for sentinel in self.sentinels:
            try:
                pipe = sentinel.pipeline(transaction=False)
                pipe.sentinel_master(service_name)
                pipe.sentinel_get_master_addr_by_name(service_name)
                state, address = pipe.execute()
            except redis.AuthenticationError:
                refused = True  # said in the error below: "no master" would send operators astray
                continue
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                continue  # down, or it does not monitor this service: ask the next one
            if not isinstance(state, dict) or not address or not state["is_master"]:
                continue
            named = (str_if_bytes(address[0]), int(address[1]))
            if named == (state["ip"], state["port"]) and (state["is_sdown"] or state["is_odown"]):
                continue  # it names a primary it believes down: no failover yet
            if newest is None or state["config-epoch"] > newest[0]:
                newest = (state["config-epoch"], named)
        if newest is None:
            why = ": a Sentinel refused authentication (check the URL's username and password)"
            raise MasterNotFoundError(f"No master found for {service_name!r}" + (why if refused else ""))
        return newest[1]


class SentinelConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that asks for the primary on every reconnect.

    redis-py 8 reconnects a dropped connection inside send_packed_command by its stored host
    and port, past the Sentinel lookup in connect(): after READONLY (a demoted primary) the
    retry went straight back to the old primary and failed again.
    """

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Connect through the Sentinels if needed, then send."""
        if not self._sock:
            self.connect()  # type: ignore[no-untyped-call]
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class SentinelSSLConnection(SentinelConnection, redis.SSLConnection):
    """SentinelConnection over TLS (rediss+sentinel://)."""


class SentinelPool(SentinelConnectionPool):
    """A Sentinel pool that asks the Sentinels for the primary every RECHECK_SECONDS.

    redis-py asks only when it opens a connection, so pooled connections outlive a failover.
    After SENTINEL FAILOVER the old primary stays writable until Sentinel demotes it about
    ten seconds later; every rotation written there in between was lost when it resynced
    from the new primary, and the next refresh of that chain failed. When the address
    changes, redis-py closes the idle connections and drops busy ones as they come back.
    """

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any) -> None:
        tls = kwargs.pop("ssl", False)
        kwargs["connection_class"] = SentinelSSLConnection if tls else SentinelConnection
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self._next_check = 0.0
        self._checking = threading.Lock()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """Hand out a connection to the primary the Sentinels name now (at most 0.5 s ago)."""
        if time.monotonic() >= self._next_check and self._checking.acquire(blocking=False):
            try:
                self._next_check = time.monotonic() + RECHECK_SECONDS
                # No Sentinel answers: keep the primary we know; a dead one fails on its own.
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    self.get_master_address()  # type: ignore[no-untyped-call]
            finally:
                self._checking.release()
        return super().get_connection(*args, **kwargs)
