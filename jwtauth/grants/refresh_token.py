"""refresh_token (RFC 6749 §6): rotate the family's refresh token, issue a fresh access token.

Every outcome of `RefreshStore.rotate` (one atomic Lua step) maps to one answer:
- OK: the next refresh token and an access token.
- REPLAY (the same token again within the grace window, RFC 9700 §4.14.2: a lost response):
  the successor already issued, derived again, and a fresh access token; never a second one.
- REUSE (a rotated-out token): the store has revoked the whole family; invalid_grant.
- WRONG_KEY (a family bound to a DPoP key, refreshed without a proof of that key, RFC 9449 §5):
  invalid_grant, nothing revoked.
- WRONG_CLIENT, UNKNOWN: invalid_grant with the same text, and nothing is revoked, so a token
  shown to another client or a guessed family id cannot end the owner's grant (RFC 6749 §10.4).

Scope and resource are checked against the family before it rotates when they can fail, so a
refused narrowing never burns the token the client holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from typing import Any

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.errors import InvalidGrant, InvalidRequest, InvalidTarget
from jwtauth.grants.base import TokenRequest
from jwtauth.oauth.scopes import narrowed_scope, requested_audience
from jwtauth.observability import NO_EVENTS, Events
from jwtauth.oidc.idtoken import IdTokens
from jwtauth.store import FamilyRecord, RefreshStore, RotationStatus
from jwtauth.tokens.factory import TokenFactory

INVALID = "the refresh token is invalid, expired or revoked"
REUSED = "the refresh token was already used; its grant is revoked"
WRONG_KEY = "the refresh token is bound to another DPoP key"


class RefreshTokenGrant:
    """Exchange a refresh token for its successor and a new access token."""

    grant_type = "refresh_token"

    def __init__(
        self,
        settings: Settings,
        tokens: TokenFactory,
        refresh: RefreshStore,
        clock: Callable[[], float] = time.time,
        events: Events = NO_EVENTS,
        id_tokens: IdTokens | None = None,
        subjects: Container[str] | None = None,
    ) -> None:
        self.settings, self.tokens, self.refresh, self.clock = settings, tokens, refresh, clock
        self.events, self.id_tokens = events, id_tokens
        # The usernames that exist now: the live user directory, so a reload that removes a user
        # ends their families too; the settings' users when built alone.
        self.subjects = subjects if subjects is not None else frozenset(u.username for u in settings.users)

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        """Return the token response for the current refresh token of one of this client's families."""
        client, params = request.client, request.params
        token = params.get("refresh_token")
        if token is None:
            raise InvalidRequest("refresh_token is required")
        raw_scope, resource = params.get("scope"), params.get("resource")
        now = self.clock()
        self._refuse_narrowing_early(client, token, raw_scope, resource, now)
        # The family's absolute expiry was fixed at its start; each rotation extends the idle one
        # by the client's refresh lifetime (a family is its client's: rotate refuses any other).
        idle_ttl, _ = self.settings.refresh_lifetimes(client)
        rotation = self.refresh.rotate(
            token, client_id=client.client_id, now=now, idle_ttl=idle_ttl, jkt=request.dpop_jkt
        )
        if rotation.status is RotationStatus.REUSE:
            self.events.reuse_detected("refresh_token")
            raise InvalidGrant(REUSED, detail=f"refresh token reuse: family {rotation.family_id} revoked")
        if rotation.status is RotationStatus.WRONG_KEY:
            # RFC 9449 §5: refused without revoking anything, like another client's token.
            raise InvalidGrant(WRONG_KEY)
        family, successor = rotation.family, rotation.token
        if family is None or successor is None:  # UNKNOWN or WRONG_CLIENT: one answer
            raise InvalidGrant(INVALID)
        if family.subject not in self.subjects:
            # The user was removed from the configuration: the grant ends with the account.
            self.refresh.revoke(family.family_id, now=now)
            raise InvalidGrant(INVALID, detail=f"family {family.family_id}: subject no longer exists")
        self.events.refresh_rotated()
        scope, audience = self._decide(client, family, raw_scope, resource)
        body = self.tokens.issue(
            client=client,
            subject=family.subject,
            scope=scope,
            audience=audience,
            refresh_token=successor,
            family_id=family.family_id,
            auth_time=int(family.auth_time),
            jkt=request.dpop_jkt,
        )
        if self.id_tokens is not None:
            # OpenID Connect Core §12.2: same sub, auth_time and session as the login; no nonce.
            self.id_tokens.add_to(
                body,
                client_id=client.client_id,
                username=family.subject,
                scope=scope,
                auth_time=family.auth_time,
                sid=family.sid,
            )
        return body

    def _refuse_narrowing_early(
        self, client: Client, token: str, raw_scope: str | None, resource: str | None, now: float
    ) -> None:
        """Refuse a scope or resource the family cannot grant BEFORE rotating, so the token lives.

        A family's scope and audience never change, so what is decided now holds at rotation.
        Nothing to decide when the request narrows nothing; a token that is not this client's
        current one is left to `rotate`, which gives it the one answer every failure gets.
        """
        if raw_scope is None and resource is None:
            return
        current = self.refresh.lookup(token, now=now)
        if current is not None and current.client_id == client.client_id:
            self._decide(client, current, raw_scope, resource)

    def _decide(
        self, client: Client, family: FamilyRecord, raw_scope: str | None, resource: str | None
    ) -> tuple[tuple[str, ...], str]:
        """Return the access token's scope and audience, within what the family was granted."""
        # RFC 6749 §6: never a scope not originally granted; the family keeps its own scope, and
        # scopes the client's configuration has since dropped are dropped here too.
        granted = tuple(s for s in family.scope.split() if s in client.scopes)
        scope = narrowed_scope(granted, raw_scope)
        if not family.audience:
            return scope, requested_audience(client, self.settings, resource)
        if resource is None:
            return scope, family.audience[0]
        if resource not in family.audience:
            # RFC 8707 §2.2: a refresh may name any resource of the original grant, no other.
            raise InvalidTarget("the requested resource is not part of this grant")
        return scope, resource
