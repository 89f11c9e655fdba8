"""User-code entry on /device under the sign-in limits: per address and for the whole server.

A user code has about 34.6 bits (RFC 8628 §6.1), so guessing must be limited (§5.1). Every
entry is counted before it is looked up, atomically (like `jwtauth.accounts.login`), against
the entering address and against one counter shared by every address; an entry that finds its
request gives both counts back. So an address may enter `max_failures` wrong codes per window,
and all addresses together `GLOBAL_FACTOR` times that: with the defaults, 500 guesses per five
minutes against 20^8 codes. Past either limit every entry is refused, a right code included,
until the window passes. A wrong, malformed, expired or used code all get the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from jwtauth.errors import SlowDown
from jwtauth.oauth.device import normalized
from jwtauth.store import FailureLimiter
from jwtauth.store.limits import network_of

T = TypeVar("T")
GLOBAL_FACTOR = 100  # the whole server may see this many times one address's wrong entries
GLOBAL_KEY = "device:all"
LOCKED = "too many wrong codes were entered; retry after the delay"


def address_key(client_addr: str) -> str:
    """Return the counter of one address's code entries (apart from its sign-in counter)."""
    return f"device:addr:{network_of(client_addr)}"  # an IPv6 client owns its /64 (issue 18)


class UserCodeGate:
    """Look up typed user codes, counting wrong ones per address and globally."""

    def __init__(self, per_address: FailureLimiter, overall: FailureLimiter) -> None:
        self.per_address, self.overall = per_address, overall

    def enter(
        self, typed: str | None, client_addr: str, *, now: float, find: Callable[[str], T | None]
    ) -> T | None:
        """Return what `find` finds for the typed code, or None; raise SlowDown while locked.

        `find` gets the canonical code (no dash, upper case) and is called only when the entry
        was counted under both limits.
        """
        mine = address_key(client_addr)
        wait = self.per_address.acquire([mine], now=now)
        if wait is not None:
            raise SlowDown(wait, LOCKED)
        wait = self.overall.acquire([GLOBAL_KEY], now=now)
        if wait is not None:
            self.per_address.release(mine)  # refused: counts nowhere
            raise SlowDown(wait, LOCKED)
        code = normalized(typed)
        found = find(code) if code is not None else None
        if found is not None:
            self.per_address.release(mine)
            self.overall.release(GLOBAL_KEY)
        return found
