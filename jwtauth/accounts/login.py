"""Resource-owner sign-in under the brute-force limits shared by every login path.

The password grant and the authorize page both check passwords, so both count failures under
the same names — per username and per client address — in Redis, shared by every worker
(RFC 6749 §4.3.2 MUST, RFC 6819 §5.1.4.2.3). Once either counter is over the limit, the
attempt is refused before any scrypt, even with the right password, until the window passes.

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
from jwtauth.store.limits import Guard, Verdict

LOCKED = "too many failed sign-in attempts; retry after the delay"


def failure_keys(username: str, client_addr: str) -> tuple[str, str]:
    """Return the brute-force counters of one login: per user, then per client address."""
    return f"user:{username}", f"addr:{client_addr}"


@dataclass(frozen=True)
class ProvenLogin:
    """A user whose password this process already proved, and the lock check still to pass."""

    user: User
    keys: tuple[str, str]
    guard: Guard


class Login:
    """Check a username and password, counting failures and refusing while locked."""

    def __init__(self, users: UserDirectory, limiter: FailureLimiter) -> None:
        self.users, self.limiter = users, limiter

    def attempt(self, username: str, password: str, client_addr: str, *, now: float) -> User | None:
        """Return the user, None for wrong credentials, or raise SlowDown while locked out."""
        keys = failure_keys(username, client_addr)
        # Counted before the (slow) check, atomically: concurrent guesses cannot all slip
        # through a read-only check before the first of them is counted (RFC 6749 §4.3.2).
        wait = self.limiter.acquire(keys, now=now)
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
        self.limiter.reset(keys[0])
        self.limiter.release(keys[1])
        return user

    def proven(self, username: str, password: str, client_addr: str, *, now: float) -> ProvenLogin | None:
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
        keys = failure_keys(username, client_addr)
        return ProvenLogin(user, keys, self.limiter.guard(keys, now=now))

    def finish(self, proven: ProvenLogin, verdict: Verdict) -> User:
        """Return the signed-in user, or raise SlowDown if the guard found a counter locked.

        Locked refuses the right password too (RFC 6749 §4.3.2); the caller's script wrote
        nothing then.
        """
        wait, on_record = verdict
        if wait is not None:
            raise SlowDown(wait, LOCKED)
        self._forget(proven.keys, on_record)
        return proven.user

    def _forget(self, keys: tuple[str, str], on_record: tuple[bool, ...]) -> None:
        """Reset the user's counter after a success, if it has failures on record."""
        # Only the user's counter: resetting the address one would let a guesser who owns one
        # account wipe its own record between guesses at other accounts. A counter that did
        # not exist has nothing to forget: the usual sign-in saves a round trip to Redis.
        if on_record[0]:
            self.limiter.reset(keys[0])
