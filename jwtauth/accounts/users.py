"""The user directory: password checks in constant time, also for unknown users."""

from __future__ import annotations

from collections.abc import Iterable

from jwtauth.accounts.hashing import SecretChecker, typical_parameters
from jwtauth.config.clients import User

MAX_USERNAME = 256
MAX_PASSWORD = 1024


class UserDirectory:
    """Authenticate resource owners configured in the settings file."""

    def __init__(self, users: Iterable[User], checker: SecretChecker) -> None:
        self._users = {u.username: u for u in users}
        self._checker = checker
        # An unknown user costs what a wrong password for a typical known user costs.
        self._like = typical_parameters(u.password_hash for u in self._users.values())

    def get(self, username: str) -> User | None:
        """Return the configured user named `username`, or None."""
        return self._users.get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        """Return the user if the password is right; unknown users cost the same as wrong ones."""
        user = self._users.get(username)
        ok = self._checker.check(user.password_hash if user else None, password, like=self._like)
        return user if ok and user is not None else None

    def proven(self, username: str, password: str) -> User | None:
        """Return the user if this process already proved this password; never runs scrypt.

        None means "not known to be right" (unknown user, wrong or not yet proven password):
        the caller takes the full path, `authenticate`, under the brute-force limits.
        """
        user = self._users.get(username)
        if user is None or not self._checker.proven(user.password_hash, password):
            return None
        return user
