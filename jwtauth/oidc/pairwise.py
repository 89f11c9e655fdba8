"""Pairwise subject identifiers (OpenID Connect Core §8.1): one `sub` per user per sector.

A client registered with `subject_type = "pairwise"` sees each user under a `sub` no other
sector can correlate: base64url(HMAC-SHA256(key = `[oidc] pairwise_salt`, msg = sector "|"
public sub)). The sector identifier is the host of the client's redirect URIs (Core §8.1
without a sector_identifier_uri: they must all share one host); the public sub is the user's
stable, never-reassigned `sub`. HMAC keyed by the salt is Core §8.1's "hash of sector,
local id and salt" with domain separation built in; the salt is a dedicated setting and not
derived from the signing keys, because a pairwise `sub` must never change: rotating the
salt changes every pairwise `sub` and relying parties lose their users.

The id_token, userinfo, the client's access tokens and its back-channel logout tokens all
carry the same pairwise `sub`; refresh families, sessions and the Redis indexes keep the
username, so `jwtauth revoke --subject` and logout work as for any client.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jwt.utils import base64url_encode

from jwtauth.accounts.live import Derived, Fixed, Live

if TYPE_CHECKING:  # jwtauth.config.clients reads PAIRWISE and sector_identifier from here
    from jwtauth.config.clients import Client, User
    from jwtauth.config.settings import Settings

PAIRWISE = "pairwise"
SUBJECT_TYPES = ("public", PAIRWISE)


def sector_identifier(redirect_uris: Iterable[str]) -> str | None:
    """Return the one host every redirect URI shares (Core §8.1), or None if they disagree."""
    hosts = {(urlsplit(uri).hostname or "").lower() for uri in redirect_uris}
    if len(hosts) != 1 or "" in hosts:
        return None
    return hosts.pop()


def pairwise_subject(salt: str, sector: str, subject: str) -> str:
    """Return the pairwise `sub` of the user whose public `sub` is `subject`, for `sector`."""
    message = sector.encode("ascii") + b"|" + subject.encode("utf-8")  # a host has no '|'
    digest = hmac.new(salt.encode("utf-8"), message, hashlib.sha256).digest()
    return base64url_encode(digest).decode("ascii")


def subjects_of(settings: Settings) -> Subjects:
    """Return the subjects of the configured clients and users, as they were read (no reload)."""
    return fixed_subjects(settings.clients, settings.users, settings.pairwise_salt)


def fixed_subjects(clients: Iterable[Client], users: Iterable[User], salt: str | None) -> Subjects:
    """Return the subjects of these clients and users, for a tool or test that never reloads."""
    return Subjects(Fixed(clients, _client_id), Fixed(users, _username), salt)


def _client_id(client: Client) -> str:
    return client.client_id


def _username(user: User) -> str:
    return user.username


class _Sectors:
    """The pairwise clients' sectors and the users of one set of tables (computed per reload)."""

    def __init__(self, clients: Mapping[str, Client], users: Mapping[str, User], salt: str | None) -> None:
        self.users = users
        self.sectors: dict[str, str] = {}
        for client in clients.values():
            if client.subject_type == PAIRWISE:
                sector = sector_identifier(client.redirect_uris)
                if sector is None or salt is None:  # refused when the settings were read
                    raise ValueError(f"client {client.client_id}: pairwise needs one host and a salt")
                self.sectors[client.client_id] = sector
        # client_id -> pairwise sub -> user, drawn once per client when first needed.
        self.reverse: dict[str, dict[str, User]] = {}


class Subjects:
    """Tell which `sub` each client sees for each user, and which user a client's `sub` names.

    Reads the clients and users in use (accounts/live.py): a client or user a reload adds is
    known at once, one it removes is gone.
    """

    def __init__(self, clients: Live[Client], users: Live[User], salt: str | None) -> None:
        self._salt = salt or ""
        self._view = Derived(lambda c, u: _Sectors(c, u, salt), clients, users)

    def of(self, client_id: str, subject: str) -> str:
        """Return the `sub` the client sees for the user whose public `sub` is `subject`."""
        sector = self._view.get().sectors.get(client_id)
        return subject if sector is None else pairwise_subject(self._salt, sector, subject)

    def access_subject(self, client_id: str, username: str) -> str:
        """Return an access token's `sub`: the username, or the pairwise `sub` for such a client."""
        view = self._view.get()
        user = view.users.get(username)
        if client_id not in view.sectors or user is None:
            return username  # RFC 9068 §2.2: our access tokens name the user by username
        return self.of(client_id, user.subject)

    def access_subjects(self, username: str) -> set[str]:
        """Return every `sub` an access token may name this user by (the revocation document's)."""
        sectors = self._view.get().sectors
        return {username} | {self.access_subject(client_id, username) for client_id in sectors}

    def user_of_access(self, client_id: str, sub: str) -> User | None:
        """Return the user an access token of `client_id` names by `sub`, or None."""
        view = self._view.get()
        if client_id not in view.sectors:
            return view.users.get(sub)
        return self._pairwise_users(view, client_id).get(sub)

    def public(self, client_id: str, sub: str) -> str | None:
        """Return the public `sub` behind the `sub` an id_token of `client_id` carried, or None."""
        view = self._view.get()
        if client_id not in view.sectors:
            return sub
        user = self._pairwise_users(view, client_id).get(sub)
        return None if user is None else user.subject

    def _pairwise_users(self, view: _Sectors, client_id: str) -> dict[str, User]:
        found = view.reverse.get(client_id)
        if found is None:
            sector = view.sectors[client_id]
            found = {pairwise_subject(self._salt, sector, u.subject): u for u in view.users.values()}
            view.reverse[client_id] = found
        return found
