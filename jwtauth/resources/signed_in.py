"""The browser session on the pages that sign users in (/authorize, /device): cookie and form field.

A consent-only page (no password) names the session it was shown for in SESSION_FIELD, bound
by the page's CSRF MAC; its POST stands in for the password only while that very session is
still the browser's (BrowserSessions.still). A password sign-in on either page starts a new
session and sets its cookie here, with the same attributes everywhere.
"""

from __future__ import annotations

import falcon

from jwtauth.oidc import session as browser_session
from jwtauth.oidc.session import Session
from jwtauth.oidc.sso import BrowserSessions

SESSION_FIELD = "sid"


def set_session_cookie(
    resp: falcon.Response, sessions: BrowserSessions, session: Session, *, secure: bool, now: float
) -> None:
    """Set the signed session cookie (nothing while no key can sign): HttpOnly, Lax, whole origin."""
    value = sessions.cookie(session)
    if value is None:
        return
    resp.set_cookie(
        browser_session.cookie_name(secure),
        value,
        max_age=max(int(session.expires - now), 1),
        path="/",
        secure=secure,
        http_only=True,
        same_site="Lax",
    )
