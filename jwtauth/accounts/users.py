"""The user directory: password checks in constant time, also for unknown users."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from jwtauth.accounts.hashing import SecretChecker, typical_parameters
from jwtauth.config.clients import User

MAX_USERNAME = 256
MAX_PASSWORD = 1024


class UserDirectory:
    """Authenticate resource owners configured in the settings file."""

    def __init__(self, users: Iterable[User], checker: SecretChecker) -> None:
        self._checker = checker
        self.replace(users)

    def replace(self, users: Iterable[User]) -> None:
        """Swap in a new set of users (a settings reload); requests see one or the other."""
        table = {u.username: u for u in users}
        # An unknown user costs what a wrong password for a typical known user costs.
        self._state = (table, typical_parameters(u.password_hash for u in table.values()))

    def configured(self) -> tuple[User, ...]:
        """Return every configured user."""
        return tuple(self._state[0].values())

    @property
    def table(self) -> Mapping[str, User]:
        """Return the configured users by name: a new mapping after each reload (accounts/live.py)."""
        return self._state[0]

    def __contains__(self, username: object) -> bool:
        """Return whether a user of this name is configured (a refresh family's subject still exists)."""
        return username in self._state[0]

    def get(self, username: str) -> User | None:
        """Return the configured user named `username`, or None."""
        return self._state[0].get(username)

    def authenticate(self, username: str, password: str) -> User | None:
        """Return the user if the password is right; unknown users cost the same as wrong ones."""
        table, like = self._state
        user = table.get(username)
        ok = self._checker.check(user.password_hash if user else None, password, like=like)
        return user if ok and user is not None else None

    def proven(self, username: str, password: str) -> User | None:
        """Return the user if this process already proved this password; never runs scrypt.

        None means "not known to be right" (unknown user, wrong or not yet proven password):
        the caller takes the full path, `authenticate`, under the brute-force limits.
        """
        user = self._state[0].get(username)
        if user is None or not self._checker.proven(user.password_hash, password):
            return None
        return user
