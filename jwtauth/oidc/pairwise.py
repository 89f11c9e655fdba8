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
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jwt.utils import base64url_encode

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
    """Return the subjects of the configured clients and users."""
    return Subjects(settings.clients, settings.users, settings.pairwise_salt)


class Subjects:
    """Tell which `sub` each client sees for each user, and which user a client's `sub` names."""

    def __init__(self, clients: Iterable[Client], users: Iterable[User], salt: str | None) -> None:
        self._users = {user.username: user for user in users}
        self._salt = salt or ""
        self._sectors: dict[str, str] = {}
        for client in clients:
            if client.subject_type == PAIRWISE:
                sector = sector_identifier(client.redirect_uris)
                if sector is None or salt is None:  # refused when the settings were read
                    raise ValueError(f"client {client.client_id}: pairwise needs one host and a salt")
                self._sectors[client.client_id] = sector
        # client_id -> pairwise sub -> user, drawn once per client when first needed.
        self._reverse: dict[str, dict[str, User]] = {}

    def of(self, client_id: str, subject: str) -> str:
        """Return the `sub` the client sees for the user whose public `sub` is `subject`."""
        sector = self._sectors.get(client_id)
        return subject if sector is None else pairwise_subject(self._salt, sector, subject)

    def access_subject(self, client_id: str, username: str) -> str:
        """Return an access token's `sub`: the username, or the pairwise `sub` for such a client."""
        user = self._users.get(username)
        if client_id not in self._sectors or user is None:
            return username  # RFC 9068 §2.2: our access tokens name the user by username
        return self.of(client_id, user.subject)

    def access_subjects(self, username: str) -> set[str]:
        """Return every `sub` an access token may name this user by (the revocation document's)."""
        return {username} | {self.access_subject(client_id, username) for client_id in self._sectors}

    def user_of_access(self, client_id: str, sub: str) -> User | None:
        """Return the user an access token of `client_id` names by `sub`, or None."""
        if client_id not in self._sectors:
            return self._users.get(sub)
        return self._pairwise_users(client_id).get(sub)

    def public(self, client_id: str, sub: str) -> str | None:
        """Return the public `sub` behind the `sub` an id_token of `client_id` carried, or None."""
        if client_id not in self._sectors:
            return sub
        user = self._pairwise_users(client_id).get(sub)
        return None if user is None else user.subject

    def _pairwise_users(self, client_id: str) -> dict[str, User]:
        found = self._reverse.get(client_id)
        if found is None:
            found = {self.of(client_id, u.subject): u for u in self._users.values()}
            self._reverse[client_id] = found
        return found

    @property
    def any_pairwise(self) -> bool:
        """Return whether some client is pairwise."""
        return bool(self._sectors)
