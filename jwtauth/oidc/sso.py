"""Single sign-on at /authorize: find the browser's session, decide the step, start sessions.

The happy path reads no session from anywhere: the cookie carries it (jwtauth.oidc.session).
Only what must be revocable is in Redis (jwtauth.store.sessions), checked in one round trip
when a session is about to stand in for the password.
"""

from __future__ import annotations

from jwtauth.config.clients import User
from jwtauth.errors import InvalidRequest
from jwtauth.oauth.authorization import AuthorizationRequest
from jwtauth.oidc.hint import IdTokenHints
from jwtauth.oidc.prompt import Step, decide
from jwtauth.oidc.session import Session, SessionCodec, new_session
from jwtauth.store.sessions import SessionMarks

PASSWORD_AMR = ("pwd",)  # RFC 8176 §2: a password


class BrowserSessions:
    """Read, judge and start browser sessions."""

    def __init__(self, codec: SessionCodec, marks: SessionMarks, hints: IdTokenHints, ttl: int) -> None:
        self.codec, self.marks, self.hints, self.ttl = codec, marks, hints, ttl

    def current(self, cookie: str | None, *, now: float) -> Session | None:
        """Return the live session of this cookie: well signed, unexpired, not ended."""
        session = self.codec.decode(cookie, now=now)
        if session is None or not self.marks.live(session.username, session.sid, session.auth_time):
            return None
        return session

    def still(self, cookie: str | None, sid: str, *, now: float) -> Session | None:
        """Return the live session of this cookie if it is the one `sid` names (a consent page's)."""
        session = self.current(cookie, now=now)
        # Signed out, or another user signed in meanwhile: the page no longer speaks for them.
        return session if session is not None and session.sid == sid else None

    def step(self, request: AuthorizationRequest, session: Session | None, *, now: float) -> Step:
        """Return the next step for this request (raising prompt=none's errors)."""
        client = request.target.client
        hint_subject = None
        raw = request.interaction.id_token_hint
        if raw is not None:
            hint = self.hints.read(raw)
            # Core §3.1.2.1: a hint is an id_token we issued to this client, expired or not.
            if hint is None or client.client_id not in hint.audience:
                raise InvalidRequest("id_token_hint is not an id_token issued to this client")
            hint_subject = hint.sub
        return decide(
            request.interaction,
            session,
            client_id=client.client_id,
            first_party=client.first_party,
            audience=request.audience,
            scope=request.scope,
            hint_subject=hint_subject,
            now=now,
        )

    def signed_in(self, user: User, *, now: float) -> Session:
        """Return a new session for a user who just gave their password (a new id: no fixation)."""
        return new_session(user.username, user.subject, now=now, ttl=self.ttl, amr=PASSWORD_AMR)

    def cookie(self, session: Session) -> str | None:
        """Return the signed cookie value of `session` (None while no key can sign)."""
        return self.codec.encode(session)
