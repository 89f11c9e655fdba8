"""password (RFC 6749 §4.3): the client sends the resource owner's username and password.

Brute force (RFC 6749 §4.3.2 MUST, RFC 6819 §5.1.4.2.3): every failed check counts against
the username and against the client's address, in Redis, shared by every worker and by the
authorize page (the same counter names, see `jwtauth.accounts.login`). Once either is over the limit the
request is refused before any scrypt, even with the right password, until the window passes.

The refusal is 429 with Retry-After and the error code `slow_down`. RFC 6749 §5.2 has no code
for "wait", and each of its codes would mislead a client: `invalid_grant` says the password is
wrong (it may be right, and retrying it later will work), `invalid_request` says the request is
malformed, `temporarily_unavailable` (an authorization-endpoint code) says the server is
unwell. `slow_down` is registered for the token endpoint in the IANA OAuth Extensions Error
registry (RFC 8628 §3.5, §7.3) and means exactly "back off, then retry"; RFC 6749 §8.5 allows
registered extension codes, and the 429 status with Retry-After (RFC 6585 §4) says how long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from jwtauth.accounts.login import Login
from jwtauth.accounts.users import MAX_PASSWORD, MAX_USERNAME
from jwtauth.config.clients import User
from jwtauth.config.settings import Settings
from jwtauth.errors import InvalidGrant, InvalidRequest
from jwtauth.grants.base import TokenRequest, family_spec
from jwtauth.oauth.scopes import requested_audience, requested_scope
from jwtauth.store import FamilySpec, IssuedRefresh, RefreshStore
from jwtauth.tokens.factory import TokenFactory

BAD_CREDENTIALS = "the username or password is not correct"


class PasswordGrant:
    """Check a resource owner's password; issue an access token and, if allowed, a refresh token."""

    grant_type = "password"

    def __init__(
        self,
        settings: Settings,
        tokens: TokenFactory,
        login: Login,
        refresh: RefreshStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.tokens, self.login, self.clock = settings, tokens, login, clock
        self.refresh = refresh

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        """Return the token response for the user these credentials prove."""
        client, params = request.client, request.params
        username, password = _credentials(params.get("username"), params.get("password"))
        # Request errors first: they cost no hashing and count as no failure.
        scope = requested_scope(client, params.get("scope"))
        audience = requested_audience(client, self.settings, params.get("resource"))
        now = self.clock()
        # The directory looks users up by exact name, so the username is the family's subject.
        spec = family_spec(
            self.settings, client, subject=username, scope=scope, audience=audience, auth_time=now, now=now
        )
        sign_in = (client.client_id, username, password, request.remote_addr, spec, now)
        signed_in = self._proven_sign_in(*sign_in)
        if signed_in is None:
            signed_in = self._full_sign_in(*sign_in)
        user, family = signed_in
        return self.tokens.issue(
            client=client,
            subject=user.username,
            scope=scope,
            audience=audience,
            refresh_token=family.token if family else None,
            family_id=family.family_id if family else None,
            auth_time=int(now),
            jkt=request.dpop_jkt,
        )

    def _proven_sign_in(
        self, client_id: str, username: str, password: str, addr: str, spec: FamilySpec | None, now: float
    ) -> tuple[User, IssuedRefresh | None] | None:
        """Sign in a password this process already proved: lock check and family in one trip.

        The family exists only if nothing is locked. None when this path does not apply (first
        sign-in, wrong password, a client that may not refresh, Cluster, a locked counter that a
        known device may pass): take the full path.
        """
        proven = self.login.proven(username, password, addr, now=now, client_id=client_id)
        if proven is None or spec is None:
            return None
        outcome = self.refresh.create_guarded(spec, proven.guard)
        if outcome is None:
            return None
        family, verdict = outcome
        user = self.login.finish(proven, verdict)
        return None if user is None else (user, family)

    def _full_sign_in(
        self, client_id: str, username: str, password: str, addr: str, spec: FamilySpec | None, now: float
    ) -> tuple[User, IssuedRefresh | None]:
        """Sign in under the counters (counted first, then scrypt); then start the family."""
        # The address is the client's backend: counted per (client, address), see accounts.login.
        user = self.login.attempt(username, password, addr, now=now, client_id=client_id)
        if user is None:
            # One answer for an unknown user and a wrong password (RFC 6749 §5.2).
            raise InvalidGrant(BAD_CREDENTIALS)
        return user, self.refresh.create(spec) if spec is not None else None


def _credentials(username: str | None, password: str | None) -> tuple[str, str]:
    """Return username and password, or refuse before any hashing (RFC 6749 §4.3.2)."""
    # forms.read_form already turned empty values into missing ones (RFC 6749 §3.1).
    if username is None or password is None:
        raise InvalidRequest("username and password are required")
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        raise InvalidRequest("username or password is too long")
    return username, password
