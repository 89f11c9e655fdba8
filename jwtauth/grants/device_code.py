"""urn:ietf:params:oauth:grant-type:device_code (RFC 8628 §3.4): the device polls for its tokens.

Each poll is one Redis round trip (DeviceStore.poll), whatever it answers:
- `authorization_pending` while the user has not decided; `slow_down` when this poll came
  sooner than the interval after the last poll the server saw, and the interval then grows by
  5 s for good (§3.5): the server enforces it, it does not only advise it;
- `access_denied` once the user denied, `expired_token` once the request expired;
- on approval, the redemption is atomic: of any number of concurrent polls exactly one gets
  the tokens; a poll after that gets `invalid_grant` and revokes the refresh family the
  redemption started (as a second redemption of an authorization code does, RFC 6749 §4.1.2);
- a device code of another client is `invalid_grant` and changes nothing for its owner.

Scope and audience are the device request's: the poll cannot change them (`scope` and
`resource` are not parameters of §3.4), and approving cannot either.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.errors import (
    AuthorizationPending,
    DeviceAccessDenied,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    PollingTooFast,
)
from jwtauth.grants.base import TokenRequest, family_spec
from jwtauth.oauth.device import GRANT_TYPE, SLOW_DOWN_STEP
from jwtauth.observability import NO_EVENTS, Events
from jwtauth.oidc.idtoken import IdTokens
from jwtauth.store import IssuedRefresh, RefreshStore
from jwtauth.store.device import DeviceStore, Poll
from jwtauth.tokens.factory import TokenFactory

MAX_DEVICE_CODE = 256
INVALID = "the device code is invalid"


class DeviceCodeGrant:
    """Answer a device's poll; issue its tokens once the user approved."""

    grant_type = GRANT_TYPE

    def __init__(
        self,
        settings: Settings,
        tokens: TokenFactory,
        devices: DeviceStore,
        refresh: RefreshStore,
        clock: Callable[[], float] = time.time,
        events: Events = NO_EVENTS,
        id_tokens: IdTokens | None = None,
    ) -> None:
        self.settings, self.tokens, self.clock = settings, tokens, clock
        self.devices, self.refresh, self.events = devices, refresh, events
        self.id_tokens = id_tokens

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        """Return the token response, or raise what the poll says (RFC 8628 §3.5)."""
        client = request.client
        device_code = request.params.get("device_code")
        if device_code is None or len(device_code) > MAX_DEVICE_CODE:
            raise InvalidRequest("device_code is required")
        now = self.clock()
        poll = self.devices.poll(device_code, client_id=client.client_id, now=now, step=SLOW_DOWN_STEP)
        if poll.status != "ok":
            raise self._refusal(poll, now)
        family = self._start_family(client, device_code, poll, now, request.dpop_jkt)
        body = self.tokens.issue(
            client=client,
            subject=poll.subject,
            scope=poll.scope,
            audience=poll.audience,
            refresh_token=family.token if family else None,
            family_id=family.family_id if family else None,
            auth_time=int(poll.auth_time),
            jkt=request.dpop_jkt,
        )
        if self.id_tokens is not None:
            # OpenID Connect Core §3.1.3.3, as for a code: an id_token when `openid` was granted.
            self.id_tokens.add_to(
                body,
                client_id=client.client_id, username=poll.subject, scope=poll.scope,
                auth_time=poll.auth_time, amr=("pwd",),
            )  # fmt: skip
        return body

    def _start_family(
        self, client: Client, device_code: str, poll: Poll, now: float, jkt: str | None
    ) -> IssuedRefresh | None:
        """Start the refresh family bound to the redeemed request, or None if the client may not refresh."""
        spec = family_spec(
            self.settings, client,
            subject=poll.subject, scope=poll.scope, audience=poll.audience, auth_time=poll.auth_time, now=now,
            jkt=jkt,
        )  # fmt: skip
        if spec is None:
            return None
        family = self.refresh.create(
            spec, then=lambda family_id: [self.devices.binding(device_code, family_id)]
        )
        if not (family.after and int(family.after[0])):
            # A replay came between redemption and bind and could not revoke a family it did not
            # know yet: this response carries tokens that are already dead (RFC 6749 §4.1.2).
            self.refresh.revoke(family.family_id, now=now)
        return family

    def _refusal(self, poll: Poll, now: float) -> Exception:
        """Return the RFC 8628 §3.5 error of a poll that issues nothing."""
        if poll.status == "pending":
            return AuthorizationPending("the user has not approved the request yet")
        if poll.status == "slow_down":
            self.events.device_flow("slow_down")
            return PollingTooFast(f"polling too fast: wait at least {poll.interval} seconds between requests")
        if poll.status == "denied":
            return DeviceAccessDenied("the user denied the request")
        if poll.status == "expired":
            self.events.device_flow("expired")
            return ExpiredToken("the device code expired; start a new device authorization request")
        if poll.status == "replayed":
            self.events.reuse_detected("device_code")
            if poll.family_id:
                self.refresh.revoke(poll.family_id, now=now)
            return InvalidGrant("the device code was already used")
        return InvalidGrant(INVALID)  # unknown, or another client's: one answer
