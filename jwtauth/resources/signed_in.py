"""The browser session on the pages that sign users in (/authorize, /device): cookie and form field.

A consent-only page (no password) names the session it was shown for in SESSION_FIELD, bound
by the page's CSRF MAC; its POST stands in for the password only while that very session is
still the browser's (BrowserSessions.still). A password sign-in on either page starts a new
session and sets its cookie here, with the same attributes everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import falcon

from jwtauth.accounts.login import Login
from jwtauth.config.clients import User
from jwtauth.errors import SlowDown
from jwtauth.oidc import session as browser_session
from jwtauth.oidc.session import Session
from jwtauth.oidc.sso import BrowserSessions
from jwtauth.web.pages import wait_words

SESSION_FIELD = "sid"
# One message for an unknown user and a wrong password: no hint which one it was.
BAD_LOGIN = "The email or password is not correct."


@dataclass(frozen=True)
class Refusal:
    """Why a password sign-in on a page failed: the page is shown again with this."""

    status: int
    message: str


def check_password(
    login: Login, resp: falcon.Response, form: Mapping[str, str], client_addr: str, *, now: float
) -> User | Refusal:
    """Sign the form's user in under the shared limits, or say how the page must refuse."""
    username, password = form.get("username"), form.get("password")
    if not username or not password:
        return Refusal(400, "Enter your email or username and your password.")
    try:
        user = login.attempt(username, password, client_addr, now=now)
    except SlowDown as locked:
        # RFC 6749 §4.3.2, RFC 6819 §5.1.4.2.3: locked even for the right password.
        resp.set_header("Retry-After", str(locked.retry_after))
        wait = wait_words(locked.retry_after)
        return Refusal(429, f"Too many failed sign-in attempts. Try again in {wait}.")
    return Refusal(400, BAD_LOGIN) if user is None else user


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
