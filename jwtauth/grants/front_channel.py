"""What /authorize itself issues once the user is signed in and agreed: a code, an implicit access
token, an id_token, or a combination (RFC 6749 §4.1.2, §4.2.2; OpenID Connect Core §3.2.2.5,
§3.3.2.5). The resource decides whether to issue; this decides what, and returns the parameters.
"""

from __future__ import annotations

from jwtauth.config.client_auth import FAPI2_CODE_TTL
from jwtauth.config.settings import Settings
from jwtauth.grants.code_family import ahead_of_code
from jwtauth.oauth import pkce
from jwtauth.oauth.authorization import AuthorizationRequest
from jwtauth.oidc.idtoken import IdTokens
from jwtauth.oidc.responses import CODE, ID_TOKEN, TOKEN
from jwtauth.oidc.session import Session
from jwtauth.store import CodeRecord, CodeStore, RefreshStore
from jwtauth.store.sessions import SessionMarks
from jwtauth.tokens.factory import TokenFactory

# The fields of a fragment response (RFC 6749 §4.2.2); never a refresh token.
IMPLICIT_FIELDS = ("access_token", "token_type", "expires_in", "expires_at", "scope")


class FrontChannel:
    """Issue the response of an authorization request for a signed-in user."""

    def __init__(
        self,
        settings: Settings,
        codes: CodeStore,
        tokens: TokenFactory,
        id_tokens: IdTokens,
        refresh: RefreshStore,
        sessions: SessionMarks,
    ) -> None:
        self.settings, self.codes, self.tokens, self.id_tokens = settings, codes, tokens, id_tokens
        # A code's grant (and refresh family) is written ahead with it (jwtauth.grants.code_family).
        self.refresh, self.sessions = refresh, sessions

    def issue(self, request: AuthorizationRequest, session: Session, now: float) -> list[tuple[str, str]]:
        """Return the response parameters (without state and iss) for `request.words`."""
        values: list[tuple[str, str]] = []
        access_token = code = None
        if TOKEN in request.words:
            body = self.tokens.issue(
                client=request.target.client,
                subject=session.username,
                scope=request.scope,
                audience=request.audience,
                auth_time=session.auth_time,
            )
            access_token = str(body["access_token"])
            values += [(name, str(body[name])) for name in IMPLICIT_FIELDS]
        if CODE in request.words:
            code = self._code(request, session, now)
            values.append(("code", code))
        if ID_TOKEN in request.words:
            # Core §3.2.2.10, §3.3.2.11: at_hash and c_hash bind the id_token to what travels with it.
            id_token = self.id_tokens.issue(
                client_id=request.target.client.client_id,
                username=session.username,
                scope=request.scope,
                auth_time=session.auth_time,
                nonce=request.nonce,
                access_token=access_token,
                code=code,
                sid=session.sid,
                amr=session.amr,
            )
            if id_token is not None:
                values.append(("id_token", id_token))
        return values

    def _code(self, request: AuthorizationRequest, session: Session, now: float) -> str:
        target, client = request.target, request.target.client
        record = CodeRecord(
            client_id=client.client_id,
            redirect_uri=target.sent_redirect_uri,  # RFC 6749 §4.1.3 compares with what was sent
            scope=" ".join(request.scope),
            subject=session.username,
            code_challenge=request.code_challenge,
            code_challenge_method=pkce.S256 if request.code_challenge else None,
            auth_time=session.auth_time,
            audience=(request.audience,),
            dpop_jkt=request.dpop_jkt,
            nonce=request.nonce,
            amr=session.amr,
            sid=session.sid,  # Back-Channel Logout §2.1: into the id_token
        )
        ttl = self.settings.code_ttl
        if client.fapi2:  # FAPI 2.0 Security Profile §5.3.2.1: at most 60 seconds
            ttl = min(ttl, FAPI2_CODE_TTL)
        ahead = ahead_of_code(self.settings, client, self.refresh, self.sessions, record, now=now, ttl=ttl)
        return self.codes.issue(record, ttl=ttl, now=now, ahead=ahead)
