"""Resource-owner sign-in under the brute-force limits shared by every login path.

The password grant and the authorize page both check passwords, so both count failures in
Redis, shared by every worker (RFC 6749 §4.3.2 MUST, RFC 6819 §5.1.4.2.3), per username and per
address. Once a counter is over its limit, the attempt is refused before any scrypt, even with
the right password, until the window passes. Strangers must not be able to lock users out
(issue 18), so:

- the address counter of the page is the browser's address; on the password grant the address
  is the client's backend, so the counter is per (client, address) with a far higher limit
  (`limits.client_max_failures`): the app's budget, not one user's;
- a device (the address; on the password grant the client and address) that signed in as a user
  is remembered for `limits.known_device_ttl`; its attempts skip that user's counter and count on
  a (user, device) counter instead, so failures elsewhere never lock the user out of it, and a
  thief at that device still gets `max_failures` guesses per window.

A password this process already proved (the HMAC memo in jwtauth.accounts.hashing) is checked first,
for microseconds: `Login.proven` then hands the caller the lock check, which the caller runs in
its own atomic script together with the new refresh family (one round trip; a lock refuses it
writing nothing), and `Login.finish` reads the verdict. Every other attempt, and every wrong
guess, takes `Login.attempt`: the attempt is counted first (atomically, refused if locked), then
scrypt; a success resets the user's count and gives the address its attempt back.
"""

from __future__ import annotations

from dataclasses import dataclass

from jwtauth.accounts.users import MAX_PASSWORD, MAX_USERNAME, UserDirectory
from jwtauth.config.clients import User
from jwtauth.errors import SlowDown
from jwtauth.store import FailureLimiter
from jwtauth.store.limits import Guard, Verdict, network_of

LOCKED = "too many failed sign-in attempts; retry after the delay"


def _device(username: str, client_addr: str, client_id: str | None) -> str:
    """Name what signs in as `username`: the browser's address, or a client's backend address."""
    return f"{username}|{client_id or ''}|{client_addr}"


@dataclass(frozen=True)
class Counters:
    """The counters of one sign-in: the user's (or the known device's), the address's, and the device."""

    keys: tuple[str, str]
    limits: tuple[int, int]
    device: str


@dataclass(frozen=True)
class Limits:
    """The brute-force limits: per user (and known device), per client backend, and device memory."""

    max_failures: int
    client_max_failures: int
    known_device_ttl: int


@dataclass(frozen=True)
class ProvenLogin:
    """A user whose password this process already proved, and the lock check still to pass."""

    user: User
    counters: Counters
    guard_names: tuple[str, str, str]  # the user's, the address's and the device's counters
    guard: Guard


class Login:
    """Check a username and password, counting failures and refusing while locked."""

    def __init__(self, users: UserDirectory, limiter: FailureLimiter, limits: Limits) -> None:
        self.users, self.limiter, self.limits = users, limiter, limits

    def counters(self, username: str, client_addr: str, client_id: str | None, *, known: bool) -> Counters:
        """Return the counters of a sign-in from `client_addr` (through `client_id`'s backend if set)."""
        client_addr = network_of(client_addr)  # an IPv6 client owns its /64
        device = _device(username, client_addr, client_id)
        if client_id is None:
            addr, addr_limit = f"addr:{client_addr}", self.limits.max_failures
        else:
            addr, addr_limit = f"client-addr:{client_id}|{client_addr}", self.limits.client_max_failures
        user = f"user-device:{device}" if known else f"user:{username}"
        return Counters((user, addr), (self.limits.max_failures, addr_limit), device)

    def attempt(
        self, username: str, password: str, client_addr: str, *, now: float, client_id: str | None = None
    ) -> User | None:
        """Return the user, None for wrong credentials, or raise SlowDown while locked out.

        `client_id`: the client whose backend sent the password (the password grant), None for
        the browser's own address (the authorize page).
        """
        known = self.limiter.known(_device(username, network_of(client_addr), client_id))
        counters = self.counters(username, client_addr, client_id, known=known)
        # Counted before the (slow) check, atomically: concurrent guesses cannot all slip
        # through a read-only check before the first of them is counted (RFC 6749 §4.3.2).
        wait = self.limiter.acquire(counters.keys, now=now, limits=counters.limits)
        if wait is not None:
            raise SlowDown(wait, LOCKED)
        user = None
        if len(username) <= MAX_USERNAME and len(password) <= MAX_PASSWORD:
            user = self.users.authenticate(username, password)
        if user is None:
            return None  # the failure is already counted against both keys
        # Only the user's counter is reset: resetting the address one would let a guesser who
        # owns one account wipe its own record between guesses at other accounts. The address
        # only gets back the attempt that just succeeded.
        self.limiter.reset(counters.keys[0])
        self.limiter.release(counters.keys[1])
        self.limiter.remember(counters.device, self.limits.known_device_ttl)
        return user

    def proven(
        self, username: str, password: str, client_addr: str, *, now: float, client_id: str | None = None
    ) -> ProvenLogin | None:
        """Return the lock check a password this process already proved must pass; None if not proven.

        The caller runs `guard` inside its own atomic script (one embedding GUARD_LUA) that acts
        only if nothing is locked, then hands the verdict to `finish`. None: this path does not
        apply and the caller runs `attempt`. Only memo-proven passwords get here, so no wrong
        guess ever does: failures are counted and refused on `attempt`'s path, unchanged.
        """
        if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
            return None
        user = self.users.proven(username, password)
        if user is None:
            return None
        counters = self.counters(username, client_addr, client_id, known=False)
        # The device's own counter too: a known device's failures count there, not on the user's.
        watched = (*counters.keys, f"user-device:{counters.device}")
        remember = (counters.device, self.limits.known_device_ttl)
        return ProvenLogin(user, counters, watched, self.limiter.guard(watched, now=now, remember=remember))

    def finish(self, proven: ProvenLogin, verdict: Verdict) -> User | None:
        """Return the signed-in user, or None if the guard found a counter locked.

        None: the caller's script wrote nothing, and the caller takes `attempt`'s path, which
        lets a known device pass a locked user counter and refuses everything else, also the
        right password (RFC 6749 §4.3.2).
        """
        wait, on_record = verdict
        if wait is not None:
            return None
        user_counter, _, device_counter = proven.guard_names
        # Only the user's counters: resetting the address one would let a guesser who owns one
        # account wipe its own record between guesses at other accounts. A counter that did not
        # exist has nothing to forget: the usual sign-in saves a round trip.
        for name, on in ((user_counter, on_record[0]), (device_counter, on_record[2])):
            if on:
                self.limiter.reset(name)
        return proven.user  # the guarded script marked the device known
