"""Clients and users without a restart: re-read the settings file when it changes.

Every worker checks the file's identity (inode, size, modification time; a Kubernetes Secret
update swaps a symlink, which changes them all) at most once per `interval`, on the request
path, by one thread while the others go on. A changed file is loaded and validated exactly as
at start; the new clients and users are swapped into the registries in one assignment each,
so a request sees the old set or the new one. Everything built from clients and users reads
the registries (accounts/live.py): pairwise subjects, CORS origins, introspection's "does this
user or client still exist", the scopes discovery offers. A file that does not validate keeps the sets in
use and says why, once per change. Other settings are not reloaded: a change to them is
reported as needing a restart.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.accounts.users import UserDirectory
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import Settings
from jwtauth.oidc.pairwise import PAIRWISE

log = logging.getLogger("jwtauth")
CHECK_INTERVAL = 1.0  # seconds between two looks at the file

Signature = tuple[int, int, int] | None
AuditWrite = Callable[..., None]


def _signature(path: Path) -> Signature:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _changes(old: Sequence[Any], new: Sequence[Any], key: str) -> dict[str, list[str]]:
    """Return the ids added, removed and changed between two sets of records."""
    before = {getattr(r, key): r for r in old}
    after = {getattr(r, key): r for r in new}
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in set(before) & set(after) if _differ(before[k], after[k])),
    }


def _differ(old: Any, new: Any) -> bool:
    """Tell whether two records differ; their claims too, which the records leave out of ==."""
    return bool(dataclasses.asdict(old) != dataclasses.asdict(new))


class AccountsReload:
    """Falcon middleware: swap in the settings file's clients and users when the file changes."""

    def __init__(
        self,
        settings: Settings,
        load: Callable[[], Settings],
        clients: ClientRegistry,
        users: UserDirectory,
        *,
        audit: AuditWrite | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings, self.load, self.clients, self.users = settings, load, clients, users
        self.path = Path(settings.source)
        self.audit, self.clock = audit, clock
        self.interval = CHECK_INTERVAL if interval is None else interval
        self._seen = _signature(self.path)
        self._next = clock() + self.interval
        self._lock = threading.Lock()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.check()

    def check(self) -> bool:
        """Reload if the file changed since the last look; return whether new sets were swapped in."""
        now = self.clock()
        if now < self._next or not self._lock.acquire(blocking=False):
            return False  # not yet, or another thread of this worker is looking
        try:
            self._next = now + self.interval
            signature = _signature(self.path)
            if signature == self._seen:
                return False
            self._seen = signature
            return self._reload()
        finally:
            self._lock.release()

    def _reload(self) -> bool:
        try:
            fresh = self.load()
        except ConfigError as exc:
            log.error("settings file changed but is unusable; the clients and users in use stay: %s", exc)
            return False
        problem = _needs_restart(fresh, self.settings)
        if problem is not None:
            log.error("settings file changed but %s; the clients and users in use stay until a restart",
                      problem)  # fmt: skip
            return False
        old_clients, old_users = self.clients.configured(), self.users.configured()
        self.clients.replace(fresh.clients)
        self.users.replace(fresh.users)
        clients = _changes(old_clients, fresh.clients, "client_id")
        users = _changes(old_users, fresh.users, "username")
        log.info(
            "settings file reloaded: %d clients, %d users (clients %s; users %s)",
            len(fresh.clients), len(fresh.users), _words(clients), _words(users),
        )  # fmt: skip
        if self.audit is not None:
            self.audit("accounts_reloaded", "success", clients=clients, users=users)
        rest = dataclasses.replace(fresh, clients=self.settings.clients, users=self.settings.users)
        if rest != self.settings:
            log.warning("settings other than clients and users changed too: they apply after a restart")
        return True


def _needs_restart(fresh: Settings, running: Settings) -> str | None:
    """Say why the running server cannot take the new clients, or None if it can."""
    if fresh.token_horizon > running.token_horizon:
        # Keys retire and tombstones expire on the horizon set at start: a longer-lived
        # token could outlive the key that signed it.
        horizon = running.token_horizon
        return f"a client's access_token_lifetime exceeds the {horizon} s this server started with"
    pairwise = [c.client_id for c in fresh.clients if c.subject_type == PAIRWISE]
    if pairwise and running.pairwise_salt is None:
        # OpenID Connect Core §8.1: the pairwise subs are drawn with the salt read at start.
        return f"client {pairwise[0]!r} is pairwise and this server started without [oidc] pairwise_salt"
    return None


def _words(changes: dict[str, list[str]]) -> str:
    return ", ".join(f"{what} {' '.join(ids)}" for what, ids in changes.items() if ids) or "unchanged"
