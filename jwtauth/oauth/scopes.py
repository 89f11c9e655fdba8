"""Scope and audience policy: what a client may ask for, and how a later grant may narrow it."""

from __future__ import annotations

from collections.abc import Sequence

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.errors import InvalidScope, InvalidTarget

MAX_SCOPE = 1024


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
