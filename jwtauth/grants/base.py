"""What every grant shares: the request it gets, the grant protocol, the refresh family's spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.store import FamilySpec


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


def family_spec(
    settings: Settings,
    client: Client,
    *,
    subject: str,
    scope: Sequence[str],
    audience: str,
    auth_time: float,
    now: float,
    jkt: str | None = None,
    sid: str | None = None,
) -> FamilySpec | None:
    """Describe the refresh-token family of a user's grant, or None if the client may not refresh.

    Without a family the access token carries no `fid`, so nothing can revoke it early; it is
    short-lived (RFC 6749 §1.5: refresh tokens are issued at the server's discretion).
    `jkt`: the request's DPoP key, which binds a public client's family (RFC 9449 §5); a
    confidential client's refresh tokens are bound to its credentials instead.
    `sid`: the browser session of the grant, which id_tokens issued on refresh name again.
    """
    lifetimes = refresh_lifetimes(settings, client)
    if lifetimes is None:
        return None
    idle_ttl, absolute_ttl = lifetimes
    return FamilySpec(
        client_id=client.client_id,
        subject=subject,
        scope=" ".join(scope),
        audience=(audience,),
        auth_time=auth_time,
        now=now,
        absolute_ttl=absolute_ttl,
        idle_ttl=idle_ttl,
        jkt=jkt if client.public else None,
        sid=sid,
    )


def refresh_lifetimes(settings: Settings, client: Client) -> tuple[int, int] | None:
    """Return a client's refresh families' idle and absolute lifetimes, or None if it may not refresh."""
    if "refresh_token" not in client.grant_types:
        return None
    return settings.refresh_lifetimes(client)
