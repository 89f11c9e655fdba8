"""Resource-owner sign-in under the brute-force limits shared by every login path.

The password grant and the authorize page both check passwords, so both count failures under
the same names — per username and per client address — in Redis, shared by every worker
(RFC 6749 §4.3.2 MUST, RFC 6819 §5.1.4.2.3). Once either counter is over the limit, the
attempt is refused before any hashing, even with the right password, until the window passes.
"""

from __future__ import annotations

from jwtauth.config import User
from jwtauth.errors import SlowDown
from jwtauth.store import FailureLimiter
from jwtauth.users import MAX_PASSWORD, MAX_USERNAME, UserDirectory


def failure_keys(username: str, client_addr: str) -> tuple[str, str]:
    """Return the brute-force counters of one login: per user, then per client address."""
    return f"user:{username}", f"addr:{client_addr}"


class Login:
    """Check a username and password, counting failures and refusing while locked."""

    def __init__(self, users: UserDirectory, limiter: FailureLimiter) -> None:
        self.users, self.limiter = users, limiter

    def attempt(self, username: str, password: str, client_addr: str, *, now: float) -> User | None:
        """Return the user, None for wrong credentials, or raise SlowDown while locked out."""
        keys = failure_keys(username, client_addr)
        wait, on_record = self.limiter.check(keys, now=now)
        if wait is not None:
            raise SlowDown(wait, "too many failed sign-in attempts; retry after the delay")
        user = None
        if len(username) <= MAX_USERNAME and len(password) <= MAX_PASSWORD:
            user = self.users.authenticate(username, password)
        if user is None:
            self.limiter.record_failure(keys, now=now)
            return None
        # Only the user's counter: resetting the address one would let a guesser who owns one
        # account wipe its own record between guesses at other accounts. A counter that did
        # not exist has nothing to forget: the usual sign-in saves a round trip to Redis.
        if on_record[0]:
            self.limiter.reset(keys[0])
        return user
