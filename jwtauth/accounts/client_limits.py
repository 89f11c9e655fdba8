"""Failed client authentications, counted before any scrypt they would cost (issue 18).

An unknown client id or a wrong secret costs a full scrypt (tens of milliseconds of CPU), so a
stream of them stalls a worker. Attempts that would run scrypt are counted first, per client
address and per client id, in the shared counters; past the limit they are refused (429
`slow_down`) before any hashing, unknown and known ids alike. Attempts that cost nothing (a
fast-hashed generated secret, a secret this process already proved) skip the counters, so a
flood does not lock a working client out.

client_credentials needs no Redis (DESIGN), so while the store is down the counters are skipped
(and logged): the server then pays scrypt as it did before, but keeps issuing tokens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from jwtauth.errors import SlowDown
from jwtauth.store import FailureLimiter
from jwtauth.store.connection import STORE_ERRORS
from jwtauth.store.limits import network_of

log = logging.getLogger("jwtauth.clients")
REFUSED = "too many failed client authentications; retry after the delay"


class ClientAuthGate:
    """Count costly client-authentication attempts per address and per client id; refuse past the limit."""

    def __init__(
        self, limiter: FailureLimiter, max_failures: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.limiter, self.max, self.clock = limiter, max_failures, clock

    @staticmethod
    def keys(client_id: str, client_addr: str | None) -> list[str]:
        """Return the counters of one attempt: the address (when known) and the client id."""
        named = [f"client-auth-id:{client_id}"]
        return [f"client-auth-addr:{network_of(client_addr)}", *named] if client_addr else named

    def enter(self, client_id: str, client_addr: str | None) -> list[str]:
        """Count one costly attempt, or raise SlowDown; return the counters to `succeeded` with.

        An empty list: the store is down and nothing was counted.
        """
        keys = self.keys(client_id, client_addr)
        try:
            wait = self.limiter.acquire(keys, now=self.clock(), limits=[self.max] * len(keys))
        except STORE_ERRORS:
            log.warning("client authentication counters unavailable: store unavailable")
            return []
        if wait is not None:
            raise SlowDown(wait, REFUSED)
        return keys

    def succeeded(self, keys: list[str]) -> None:
        """Give back the attempt: what stays counted are failures."""
        try:
            for key in keys:
                self.limiter.release(key)
        except STORE_ERRORS:
            log.warning("client authentication counters unavailable: store unavailable")
