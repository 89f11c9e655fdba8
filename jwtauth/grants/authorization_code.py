"""authorization_code (RFC 6749 §4.1.3): redeem a code once, check PKCE and redirect_uri.

redirect_uri at the token endpoint (RFC 6749 §4.1.3, with the OAuth 2.1 reasoning):
- sent: it must equal the authorization request's (or the client's only registered URI when
  that request omitted it);
- omitted: accepted when the client has exactly one registered redirect URI (the code cannot
  have been sent anywhere else, so the old README's exchange without redirect_uri works) or
  when the code is bound to a PKCE challenge (only the party that started the flow holds the
  verifier, which is what the redirect_uri check protected); otherwise invalid_grant.

Who can burn a code: nobody but a redemption that succeeds, or a second one (RFC 6749 §4.1.2).
A code presented by another client is refused and stays redeemable, and so is one whose record
does not fit the request (PKCE verifier, redirect_uri, DPoP key, scope, resource): the take
script checks all of it (a CodeCheck built here) inside its atomic step and takes nothing on a
mismatch, so a thief holding a public client's code but not its verifier cannot destroy it,
and a client's own mistake leaves its code usable for the rest of its short life. The rules
are written once more in Python below: they word the refusal of a record the script handed
back, and run again on what it took. A second redemption revokes what the first issued only
when it proves it comes from the client (the verifier matches, or a confidential client
authenticated): a thief of a public client's used code gets `invalid_grant` and revokes nothing.

Round trips: one for a code issued with its refresh family written ahead (standalone Redis and
Sentinel, jwtauth.grants.code_family): the take creates the family and binds it to the code in
its own atomic step. Otherwise two: the take (with its checks), then the family and its binding
to the code in one pipeline (RefreshStore.create's `then`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.errors import InvalidGrant, InvalidRequest, InvalidTarget, OAuthError
from jwtauth.grants.base import TokenRequest, family_spec, refresh_lifetimes
from jwtauth.grants.code_family import links_to_session
from jwtauth.oauth import pkce, redirects
from jwtauth.oauth.scopes import requested_audience
from jwtauth.observability import NO_EVENTS, Events
from jwtauth.oidc.idtoken import IdTokens
from jwtauth.store import (
    CodeCheck,
    CodeRecord,
    CodeStore,
    FamilySpec,
    FamilyStart,
    IssuedRefresh,
    RefreshStore,
    TakeResult,
    TakeStatus,
)
from jwtauth.store.redisclient import ScriptCall
from jwtauth.store.sessions import SessionMarks
from jwtauth.tokens.factory import TokenFactory

MAX_CODE = 256


class AuthorizationCodeGrant:
    """Exchange an authorization code for an access token and, if allowed, a refresh token."""

    grant_type = "authorization_code"

    def __init__(
        self,
        settings: Settings,
        tokens: TokenFactory,
        codes: CodeStore,
        refresh: RefreshStore,
        clock: Callable[[], float] = time.time,
        events: Events = NO_EVENTS,
        id_tokens: IdTokens | None = None,
        sessions: SessionMarks | None = None,
    ) -> None:
        self.settings, self.tokens, self.clock = settings, tokens, clock
        self.codes, self.refresh, self.events = codes, refresh, events
        self.id_tokens, self.sessions = id_tokens, sessions

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        """Return the token response for a code issued to this client."""
        client, params = request.client, request.params
        code, verifier = params.get("code"), params.get("code_verifier")
        if code is None or len(code) > MAX_CODE:
            raise InvalidRequest("code is required")
        if verifier is not None and not pkce.valid_verifier(verifier):
            raise InvalidRequest("code_verifier must be 43-128 unreserved characters (RFC 7636 §4.1)")
        now = self.clock()
        bar, start = self._ahead(code, client, now, request.dpop_jkt)
        record, taken = self._take(code, client, now, params, (request.dpop_jkt, bar, start))
        started = start.issued if taken.started and start is not None else None
        try:
            audience = self._checked_audience(client, record, params, request.dpop_jkt)
            if started is not None and taken.family_audience != audience:
                raise InvalidGrant("the authorization code is invalid or expired")  # not its record's
        except OAuthError:
            # The script and these rules agree, so this does not happen; if they ever part, the
            # family the take started must not outlive the refusal.
            if started is not None:
                self.refresh.revoke(started.family_id, now=now)
            raise
        scope = tuple(record.scope.split())
        family = started or self._start_family(client, code, record, (scope, audience), now, request.dpop_jkt)
        body = self.tokens.issue(
            client=client,
            subject=record.subject,
            scope=scope,
            audience=audience,
            refresh_token=family.token if family else None,
            family_id=family.family_id if family else None,
            auth_time=int(record.auth_time),
            jkt=request.dpop_jkt,
        )
        if self.id_tokens is not None:
            # OpenID Connect Core §3.1.3.3: the id_token rides with the tokens of the code.
            self.id_tokens.add_to(
                body,
                client_id=client.client_id,
                username=record.subject,
                scope=scope,
                auth_time=record.auth_time,
                nonce=record.nonce,
                amr=record.amr,
                sid=record.sid,
            )
        return body

    def _checked_audience(
        self, client: Client, record: CodeRecord, params: Mapping[str, str], jkt: str | None
    ) -> str:
        """Check redirect_uri, PKCE, DPoP key and resource against the code; return the audience."""
        _check_redirect_uri(client, record, params.get("redirect_uri"))
        if record.dpop_jkt is not None and record.dpop_jkt != jkt:
            # RFC 9449 §10: the code is bound to the key named by dpop_jkt at /authorize.
            raise InvalidGrant("the authorization code is bound to another DPoP key")
        _check_pkce(client, record, params.get("code_verifier"))
        # Redis holds the grant, the configuration the client: a record wider than what the
        # client may have now is refused, whatever wrote it (issue 18, defence in depth).
        if not set(record.scope.split()) <= client.scopes:
            raise InvalidGrant("the authorization code's scope is not allowed for this client")
        return _audience(client, self.settings, record, params.get("resource"))

    def _start_family(
        self, client: Client, code: str, record: CodeRecord, grant: tuple[tuple[str, ...], str],
        now: float, jkt: str | None,
    ) -> IssuedRefresh | None:
        """Start the code's refresh family bound to the code, or None if the client may not refresh."""
        spec = family_spec(
            self.settings, client,
            subject=record.subject, scope=grant[0], audience=grant[1], auth_time=record.auth_time,
            now=now, jkt=jkt, sid=record.sid,
        )  # fmt: skip
        if spec is None:
            return None
        # The family is bound to the code's used marker in the round trip that creates it (a
        # replay from then on revokes it), so the exchange makes two trips, not three.
        family = self.refresh.create(
            spec, then=lambda family_id: self._bindings(code, record, spec, family_id)
        )
        if not (family.after and int(family.after[0])):
            # A second redemption arrived between take and bind and could not revoke a family it
            # did not know yet (RFC 6749 §4.1.2), so this request revokes it. This request still
            # won the code: it answers 200 with tokens that are already dead, exactly the outcome
            # of a replay that comes after the bind.
            self.refresh.revoke(family.family_id, now=now)
        return family

    def _bindings(self, code: str, record: CodeRecord, spec: FamilySpec, family_id: str) -> list[ScriptCall]:
        """Return the calls that tie a new family to its code and, for logout, to its session."""
        calls = [self.codes.binding(code, family_id)]
        if self.sessions is not None and record.sid is not None and links_to_session(spec.scope.split()):
            until = spec.now + spec.absolute_ttl  # the latest the family can end
            link = self.sessions.linking(record.subject, record.sid, family_id, until=until, now=spec.now)
            calls.append(link)
        return calls

    def _ahead(
        self, code: str, client: Client, now: float, jkt: str | None
    ) -> tuple[str | None, FamilyStart | None]:
        """Return the bar of the code's grant, and the family the take may create if written ahead.

        Both only where one script may touch them with the code (`starts_families`).
        """
        if not self.codes.starts_families:
            return None, None
        grant_id = self.codes.family_id(code)
        bar = self.refresh.bar_key(grant_id)
        lifetimes = refresh_lifetimes(self.settings, client)
        if lifetimes is None:
            return bar, None
        # RFC 9449 §5: a public client's family is bound to its DPoP key (as in family_spec).
        bound_key = jkt if client.public else None
        return bar, self.refresh.starting(grant_id, now=now, lifetimes=lifetimes, jkt=bound_key)

    def _take(
        self,
        code: str,
        client: Client,
        now: float,
        params: Mapping[str, str],
        request: tuple[str | None, str | None, FamilyStart | None],
    ) -> tuple[CodeRecord, TakeResult]:
        """Take the code if its record fits this request; raise the OAuth error otherwise.

        Return the record and the take's result (whether it also started the family).
        `request`: the request's DPoP key thumbprint, the bar of the code's grant, and the family
        the take may start.
        """
        jkt, bar, start = request
        verifier = params.get("code_verifier")
        # Reuse revokes only when the presenter proves it is the client (issue 18): a public
        # client by the verifier, a confidential one by authenticating (it got here).
        proof = pkce.s256(verifier) if verifier is not None else None

        def take(check: CodeCheck | None) -> TakeResult:
            return self.codes.take(
                code, client_id=client.client_id, now=now, proof=proof, authenticated=not client.public,
                check=check, bar=bar, start=start,
            )  # fmt: skip

        result = take(_code_check(client, self.settings, params, jkt))
        if result.status is TakeStatus.UNCHECKED and result.record is not None:
            # Issued by a release whose codes the script cannot check: check here, then take.
            self._checked_audience(client, result.record, params, jkt)
            result = take(None)
        if result.status is TakeStatus.REFUSED and result.record is not None:
            # Nothing was taken: the same rules in Python say what did not fit.
            self._checked_audience(client, result.record, params, jkt)
            raise InvalidGrant("the authorization code does not fit this request")
        if result.status is TakeStatus.UNPROVEN_REUSE:
            raise InvalidGrant("the authorization code is invalid or expired")
        if result.status is TakeStatus.ALREADY_USED:
            # RFC 6749 §4.1.2: a code used twice MUST be denied and SHOULD revoke what it issued.
            self.events.reuse_detected("authorization_code")
            if result.family_id:
                self.refresh.revoke(result.family_id, now=now)
            raise InvalidGrant("the authorization code was already used")
        if result.status is not TakeStatus.OK or result.record is None:
            if result.family_id:  # started for a record that did not open: nobody may use it
                self.refresh.revoke(result.family_id, now=now)
            # Unknown, expired, or issued to another client (RFC 6749 §4.1.3): one answer.
            raise InvalidGrant("the authorization code is invalid or expired")
        return result.record, result


def _code_check(client: Client, settings: Settings, params: Mapping[str, str], jkt: str | None) -> CodeCheck:
    """Spell, for the take script, what of a code's record this request accepts (the rules below)."""
    sent = params.get("redirect_uri")
    only = client.redirect_uris[0] if len(client.redirect_uris) == 1 else None
    allowed = client.audiences or (settings.audience,)
    fits_unset = sent is not None and only is not None and redirects.same_as_authorization(only, sent)
    return CodeCheck(
        redirect_uris=redirects.authorization_uris_matching(sent) if sent is not None else None,
        unset_redirect_ok=fits_unset,
        one_registered_uri=only is not None,
        jkt=jkt,
        require_pkce=client.require_pkce,
        scopes=" ".join(client.scopes),
        default_audience=allowed[0],
        resource=params.get("resource"),
        audiences=tuple(allowed),
    )


def _check_redirect_uri(client: Client, record: CodeRecord, sent: str | None) -> None:
    """Apply RFC 6749 §4.1.3 to redirect_uri as the module docstring explains."""
    if sent is not None:
        expected = record.redirect_uri
        if expected is None and len(client.redirect_uris) == 1:
            expected = client.redirect_uris[0]
        if expected is None or not redirects.same_as_authorization(expected, sent):
            raise InvalidGrant("redirect_uri does not match the authorization request")
        return
    if record.redirect_uri is None or len(client.redirect_uris) == 1 or record.code_challenge:
        return
    raise InvalidGrant("redirect_uri is required: the authorization request sent one")


def _check_pkce(client: Client, record: CodeRecord, verifier: str | None) -> None:
    """Check the verifier against the code's S256 challenge (RFC 7636 §4.6)."""
    if record.code_challenge is None:
        if verifier is not None:
            # RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a downgrade.
            raise InvalidGrant("code_verifier sent, but the code was issued without code_challenge")
        if client.require_pkce:
            raise InvalidGrant("this client must use PKCE")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required: the code was issued with code_challenge")
    if record.code_challenge_method != pkce.S256 or not pkce.verify(verifier, record.code_challenge):
        raise InvalidGrant("code_verifier does not match code_challenge")


def _audience(client: Client, settings: Settings, record: CodeRecord, resource: str | None) -> str:
    """Return the audience the code was issued for; `resource` may only repeat it (RFC 8707 §2.2)."""
    audience = record.audience[0] if record.audience else requested_audience(client, settings, None)
    if resource is not None and resource != audience:
        raise InvalidTarget("resource differs from the one of the authorization request")
    if len(record.audience) > 1 or audience not in (client.audiences or (settings.audience,)):
        raise InvalidGrant("the authorization code's audience is not allowed for this client")
    return audience
