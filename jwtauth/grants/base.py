"""What every grant shares: the request it gets, the grant protocol, refresh-family start."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.store import IssuedRefresh, RefreshStore
from jwtauth.store.limits import Guard, Verdict
from jwtauth.store.redisclient import ScriptCall


@dataclass(frozen=True)
class TokenRequest:
    """One authenticated token request."""

    client: Client
    params: Mapping[str, str]
    remote_addr: str
    # RFC 9449 §5: the thumbprint of the key of the request's checked DPoP proof, if it had one.
    dpop_jkt: str | None = None


class Grant(Protocol):
    """A handler for one grant_type (RFC 6749 §4)."""

    grant_type: str

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        """Return the token response body or raise an OAuthError."""
        ...


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
    jkt: str | None = None,
) -> IssuedRefresh | None:
    """Start a refresh-token family for a user's grant, or None if the client may not refresh.

    Without a family the access token carries no `fid`, so nothing can revoke it early; it is
    short-lived (RFC 6749 §1.5: refresh tokens are issued at the server's discretion). `then`
    is RefreshStore.create's: script calls to run right after the family, in its round trip.
    `jkt`: the request's DPoP key, which binds a public client's family (RFC 9449 §5); a
    confidential client's refresh tokens are bound to its credentials instead.
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
        jkt=jkt if client.public else None,
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
