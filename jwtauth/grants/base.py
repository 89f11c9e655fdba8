"""What every grant shares: the request it gets, scope and audience rules, token issuance."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jwtauth.config import Client, Settings
from jwtauth.errors import InvalidScope, InvalidTarget, TemporarilyUnavailable
from jwtauth.keys import KeyRing
from jwtauth.redisclient import ScriptCall
from jwtauth.store import IssuedRefresh, RefreshStore
from jwtauth.store.limits import Guard, Verdict
from jwtauth.tokens import access_claims, mint, token_response

MAX_SCOPE = 1024


@dataclass(frozen=True)
class TokenRequest:
    """One authenticated token request."""

    client: Client
    params: Mapping[str, str]
    remote_addr: str


class Grant(Protocol):
    """A handler for one grant_type (RFC 6749 §4)."""

    grant_type: str

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        """Return the token response body or raise an OAuthError."""
        ...


def requested_scope(client: Client, raw: str | None) -> tuple[str, ...]:
    """Return the scope to grant: the request's if all allowed, else the client's default."""
    if raw is None:
        return client.default_scope  # RFC 6749 §3.3: a documented default when omitted
    if len(raw) > MAX_SCOPE:
        raise InvalidScope("scope is too long")
    asked = tuple(dict.fromkeys(raw.split(" ")))  # keep order, drop repeats
    if "" in asked or not set(asked) <= client.scopes:
        raise InvalidScope("the requested scope is not allowed for this client")
    return asked


def narrowed_scope(granted: Sequence[str], raw: str | None) -> tuple[str, ...]:
    """Return a subset of an earlier grant (RFC 6749 §6: never wider than originally granted)."""
    if raw is None:
        return tuple(granted)
    asked = tuple(dict.fromkeys(raw.split(" ")))
    if "" in asked or not set(asked) <= set(granted):
        raise InvalidScope("the requested scope exceeds the scope originally granted")
    return asked


def requested_audience(client: Client, settings: Settings, resource: str | None) -> str:
    """Return the token's `aud`: the RFC 8707 resource if the client may address it."""
    allowed = client.audiences or (settings.audience,)
    if resource is None:
        return allowed[0]
    if resource not in allowed:
        raise InvalidTarget("the requested resource is not available to this client")
    return resource


class TokenFactory:
    """Turn a decided grant into a signed access token and the response body."""

    def __init__(
        self,
        settings: Settings,
        keyring: KeyRing,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: secrets.token_urlsafe(16),
    ) -> None:
        self.settings, self.keyring, self.clock, self.new_id = settings, keyring, clock, new_id

    def issue(
        self,
        *,
        client: Client,
        subject: str,
        scope: Sequence[str],
        audience: str,
        refresh_token: str | None = None,
        family_id: str | None = None,
        auth_time: int | None = None,
    ) -> dict[str, Any]:
        """Sign an access token and return the RFC 6749 §5.1 body."""
        key = self.keyring.signer()
        if key is None:
            raise TemporarilyUnavailable("no signing key is available", retry_after=5)
        claims = access_claims(
            issuer=self.settings.issuer,
            subject=subject,
            client_id=client.client_id,
            audience=audience,
            scope=scope,
            now=int(self.clock()),
            ttl=self.settings.access_token_ttl,
            jti=self.new_id(),
            family_id=family_id,
            auth_time=auth_time,
        )
        return token_response(mint(claims, key), claims, refresh_token)


def start_family(
    refresh: RefreshStore,
    settings: Settings,
    client: Client,
    *,
    subject: str,
    scope: Sequence[str],
    audience: str,
    auth_time: float,
    now: float,
    then: Callable[[str], Sequence[ScriptCall]] | None = None,
) -> IssuedRefresh | None:
    """Start a refresh-token family for a user's grant, or None if the client may not refresh.

    Without a family the access token carries no `fid`, so nothing can revoke it early; it is
    short-lived (RFC 6749 §1.5: refresh tokens are issued at the server's discretion). `then`
    is RefreshStore.create's: script calls to run right after the family, in its round trip.
    """
    if "refresh_token" not in client.grant_types:
        return None
    return refresh.create(
        client_id=client.client_id,
        subject=subject,
        scope=" ".join(scope),
        audience=[audience],
        auth_time=auth_time,
        now=now,
        absolute_ttl=settings.refresh_absolute_ttl,
        idle_ttl=settings.refresh_idle_ttl,
        then=then,
    )


def start_family_guarded(
    refresh: RefreshStore,
    settings: Settings,
    client: Client,
    guard: Guard,
    *,
    subject: str,
    scope: Sequence[str],
    audience: str,
    auth_time: float,
    now: float,
) -> tuple[IssuedRefresh | None, Verdict] | None:
    """Start a family as `start_family` does, unless `guard` says locked, in one round trip.

    None when this cannot be done in one step (Cluster, or a client that may not refresh):
    the caller then checks the limits and calls `start_family` as usual.
    """
    if "refresh_token" not in client.grant_types:
        return None
    return refresh.create_guarded(
        guard,
        client_id=client.client_id,
        subject=subject,
        scope=" ".join(scope),
        audience=[audience],
        auth_time=auth_time,
        now=now,
        absolute_ttl=settings.refresh_absolute_ttl,
        idle_ttl=settings.refresh_idle_ttl,
    )
