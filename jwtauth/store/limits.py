"""Count failed credential checks in Redis, shared by every worker, and lock out guessers.

RFC 6749 §4.3.2 and RFC 6819 §5.1.4.2.3: the password grant (and any credential check)
must be protected against brute force. Each counted key (a username, a client address) is
its own fixed window:

- an attempt is counted before its credentials are checked (`acquire`); a success gives its
  count back (`release`) or clears the key (`reset`), so what stays counted are failures;
- the window opens at the first counted attempt and lasts `window_seconds`;
- after `max_failures` counted inside it, the key is locked until the window closes: every
  attempt is refused, even with the right password, so guessing gains nothing;
- attempts while locked are not counted and do not extend the lock; the next attempt after
  the window closes opens a new window with a count of 1.

So a key can try at most `max_failures` times per `window_seconds`.

Key layout: `{prefix}{l:<hmac-sha256(key)>}`, a hash (n, start). Each key is its own
hash tag: multi-key calls run one small step per key, which Redis Cluster allows. The HMAC is
keyed with the pepper every worker shares (jwtauth.store.pepper), so no username or address sits
in Redis and a dump cannot confirm a guessed username or recover an IPv4 address by brute force.
Counters and known-device marks from before the pepper (unkeyed HMAC) are not read: a counter
lasted one window, and a device forgotten once proves itself again at its next sign-in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from jwtauth.store.pepper import Pepper
from jwtauth.store.redisclient import RedisClient, checked_prefix, tagged_key


def network_of(address: str) -> str:
    """Return what one client owns of `address`: an IPv4 address, or an IPv6 address's /64.

    An IPv6 subscriber gets at least a /64 (RFC 6177), so counting single IPv6 addresses would
    give a guesser 2^64 fresh counters (issue 18). Anything that is not an IP is kept as it is.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


# Count an attempt BEFORE its credentials are checked, unless the key is locked. A read-only
# check followed by a later failure count lets every guess in flight pass the check before any
# of them is counted (30 concurrent guesses all got through a limit of 5).
# KEYS: counter. ARGV: now, max failures, window. Returns the seconds to wait (0: counted).
# The counter keeps its own limit ('max'), so a lock check elsewhere (GUARD_LUA) applies it.
_ACQUIRE = """
local now, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'n', 'start')
local start = tonumber(v[2])
if v[1] and now < start + window then
  if tonumber(v[1]) >= max then
    return math.max(math.ceil(start + window - now), 1)
  end
  redis.call('HINCRBY', KEYS[1], 'n', '1')
else
  start = now
  redis.call('HSET', KEYS[1], 'n', '1', 'start', ARGV[1], 'max', ARGV[2])
end
local ms = math.max(math.ceil((start + window - now) * 1000), 1)
redis.call('PEXPIRE', KEYS[1], string.format('%d', ms))
return 0
"""

# Give back one counted attempt that succeeded (or was refused by another key's lock).
# KEYS: counter.
_RELEASE = """
if redis.call('HEXISTS', KEYS[1], 'n') == 1 then
  if redis.call('HINCRBY', KEYS[1], 'n', '-1') <= 0 then
    redis.call('DEL', KEYS[1])
  end
end
"""

# The lock check as a Lua function, for another store's script that must act only while no
# counter is locked, atomically and in the same round trip (see `FailureLimiter.guard`).
# The counters are KEYS[first..#KEYS]; ARGV[a], ARGV[a+1], ARGV[a+2]: now, max failures, window.
# Returns the seconds to wait (0: not locked) and, per counter, 1 if it has failures on record.
# `remember_device(k, a)`: mark KEYS[k] (see `FailureLimiter.remember`) for ARGV[a+3] seconds.
GUARD_LUA = """
local function remember_device(k, a)
  redis.call('SET', KEYS[k], '1', 'EX', ARGV[a + 3])
end
local function failure_guard(first, a)
  local now, max, window = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local wait, on_record = 0, {}
  for i = first, #KEYS do
    local v = redis.call('HMGET', KEYS[i], 'n', 'start', 'max')
    on_record[#on_record + 1] = v[1] and 1 or 0
    if v[1] then
      local ends = tonumber(v[2]) + window
      if tonumber(v[1]) >= (tonumber(v[3]) or max) and now < ends then
        wait = math.max(wait, math.ceil(ends - now), 1)
      end
    end
  end
  return {wait, on_record}
end
"""

# What a lock check says: seconds to wait (None: not locked) and, per key, whether it has
# failures on record.
Verdict: TypeAlias = "tuple[int | None, tuple[bool, ...]]"


@dataclass(frozen=True)
class Guard:
    """A lock check for `GUARD_LUA`: its counter keys (last in KEYS), the device mark and four ARGV."""

    keys: tuple[str, ...]
    args: tuple[str, str, str, str]
    mark: str  # the known-device marker to set when nothing is locked (remember_device)

    def verdict(self, reply: Sequence[Any]) -> Verdict:
        """Read `failure_guard`'s reply `{wait, on_record}`."""
        wait, on_record = int(reply[0]), reply[1]
        return (wait if wait > 0 else None), tuple(bool(flag) for flag in on_record)


LABEL = "sign-in counters"


class FailureLimiter:
    """Refuse attempts for keys that failed too often within a fixed window."""

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "jwtauth:",
        pepper: Pepper,
        max_failures: int,
        window_seconds: float,
    ) -> None:
        if max_failures < 1 or window_seconds <= 0:
            raise ValueError("max_failures >= 1 and window_seconds > 0")
        self._client = client
        self._prefix = checked_prefix(prefix)
        self._max = max_failures
        self._window = window_seconds
        self._pepper = pepper
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def acquire(self, keys: Sequence[str], *, now: float, limits: Sequence[int] = ()) -> int | None:
        """Count one attempt against every key before it is checked; return the wait if locked.

        `limits`: each key's own maximum of failures, in order (the limiter's by default).

        Each key is its own atomic step (Redis Cluster: one hash tag per key). When a later key
        is locked, the attempts already counted for earlier keys are given back, so a refused
        attempt counts nowhere. The caller gives back the address count on success too
        (`release`) and resets the user's (`reset`); a failure simply stays counted.
        """
        counted: list[str] = []
        maxima = [*limits, *[self._max] * (len(keys) - len(limits))]
        for key, limit in zip(keys, maxima, strict=True):
            args = [repr(now), str(limit), repr(self._window)]
            wait = int(self._acquire(keys=[self._key(key)], args=args))
            if wait > 0:
                for done in counted:
                    self.release(done)
                return wait
            counted.append(key)
        return None

    def release(self, key: str) -> None:
        """Give back one attempt counted by `acquire` (it succeeded, or another key refused it)."""
        self._release(keys=[self._key(key)])

    def guard(self, keys: Sequence[str], *, now: float, remember: tuple[str, int]) -> Guard:
        """Return the lock check of `keys` for a script that embeds `GUARD_LUA`.

        Locked exactly when `acquire` would refuse, but read from inside another store's
        script, which writes nothing: that store can then act only if no key is locked, in one
        round trip. `remember`: the device to mark known for so many seconds if nothing is locked.
        """
        device, ttl = remember
        args = (repr(now), str(self._max), repr(self._window), str(ttl))
        return Guard(tuple(self._key(k) for k in keys), args, self._key("known|" + device))

    def known(self, key: str) -> bool:
        """Return whether `remember` marked `key` (a device that signed in as a user) and it lives."""
        return bool(self._client.exists(self._key("known|" + key)))

    def remember(self, key: str, ttl_seconds: int) -> None:
        """Mark `key` for `ttl_seconds` (a device that just signed in as a user)."""
        self._client.set(self._key("known|" + key), b"1", ex=ttl_seconds)

    def reset(self, key: str) -> None:
        """Forget the failures of `key` (after a successful login)."""
        self._client.delete(self._key(key))

    def _key(self, key: str) -> str:
        digest = self._pepper.digest(LABEL, key)
        return tagged_key(self._prefix, "l", digest)
