"""GET, POST /logout: the OpenID Connect end_session_endpoint (RP-Initiated Logout 1.0).

The rules live in jwtauth.oidc.logout; this resource reads the request, asks the user to confirm
when the rules say so (a CSRF-bound form with a button `name="logout"`), ends the session and its
cookie, then redirects to the registered post-logout URI or shows the signed-out page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.errors import OAuthError
from jwtauth.oidc import session as browser_session
from jwtauth.oidc.hint import IdTokenHints
from jwtauth.oidc.logout import LOGOUT_PARAMS, LogoutRefused, LogoutRequest, SessionEnder, logout_request
from jwtauth.oidc.sso import BrowserSessions
from jwtauth.resources import paths
from jwtauth.resources.forms import parse_params, read_form
from jwtauth.store.connection import STORE_ERRORS, unavailable
from jwtauth.web.pages import SECURITY_HEADERS, Pages, form_target, form_token, form_token_ok

log = logging.getLogger("jwtauth")

CSRF_FIELD = "csrf_token"
EPOCH = datetime.fromtimestamp(0, UTC)


class LogoutResource:
    """The end-session endpoint."""

    def __init__(
        self,
        *,
        issuer: str,
        clients: ClientRegistry,
        hints: IdTokenHints,
        sessions: BrowserSessions,
        ender: SessionEnder,
        pages: Pages,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients, self.hints, self.sessions, self.ender = clients, hints, sessions, ender
        self.pages, self.clock = pages, clock
        self.action = urlsplit(issuer).path + paths.LOGOUT
        self.issuer, self.secure = issuer, issuer.startswith("https://")
        self.session_cookie = browser_session.cookie_name(self.secure)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Log out, or ask the user to confirm first."""
        self._handle(req, resp, lambda: parse_params(req.query_string), confirmed=False)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Log out: the confirmation form's POST, or an RP's form POST (§2 allows both)."""
        self._handle(req, resp, lambda: read_form(req), confirmed=True)

    def _handle(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        read: Callable[[], dict[str, str]],
        *,
        confirmed: bool,
    ) -> None:
        try:
            params = read()
            request = logout_request(params, self.clients, self.hints)
        except (OAuthError, LogoutRefused) as exc:
            self._refuse(resp, str(exc.description if isinstance(exc, OAuthError) else exc))
            return
        now = self.clock()
        try:
            session = self.sessions.current(req.cookies.get(self.session_cookie), now=now)
            if request.needs_confirmation(session) and not (confirmed and self._confirmed(req, params, now)):
                assert session is not None  # needs_confirmation says so
                expired = confirmed and "logout" in params  # our form, posted too late or changed
                self._confirm_page(req, resp, request, session.username, status=400 if expired else 200)
                return
            if session is not None:
                self.ender.end(session, now=now)
        except STORE_ERRORS as exc:
            if not unavailable(exc):
                raise
            log.error("store unavailable during %s %s: %s", req.method, req.path, type(exc).__name__)
            self._refuse(resp, "Signing out is not possible right now. Please try again.", status=503)
            return
        # The cookie goes whatever happened: a browser that asked to sign out keeps no session.
        # An empty value that expired long ago, with the attributes the `__Host-` prefix demands
        # (falcon's unset_cookie drops Secure, and browsers then ignore it).
        resp.set_cookie(
            self.session_cookie,
            "",
            expires=EPOCH,
            path="/",
            secure=self.secure,
            http_only=True,
            same_site="Lax",
        )
        where = request.location()
        if where is None:
            self.pages.render(resp, "logged_out.html")
            return
        resp.status = falcon.HTTP_303
        resp.set_headers(SECURITY_HEADERS)
        resp.set_header("Content-Security-Policy", self.pages.policy())
        resp.set_header("Location", where)

    def _confirmed(self, req: falcon.Request, params: Mapping[str, str], now: float) -> bool:
        """Tell whether this POST is our confirmation form's, unchanged and in time."""
        token = params.get(CSRF_FIELD)
        return params.get("logout") == "yes" and form_token_ok(
            req, token, params, LOGOUT_PARAMS, issuer=self.issuer, now=now
        )

    def _confirm_page(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        request: LogoutRequest,
        username: str,
        *,
        status: int,
    ) -> None:
        token = form_token(req, resp, request.params, LOGOUT_PARAMS, secure=self.secure, now=self.clock())
        targets = [
            "'self'",
            *filter(None, [form_target(request.redirect_uri)] if request.redirect_uri else []),
        ]
        self.pages.render(
            resp,
            "logout.html",
            status=status,
            form_targets=targets,
            client_name=request.client.name if request.client else None,
            signed_in_as=username,
            action=self.action,
            hidden=[*request.params.items(), (CSRF_FIELD, token)],
            message="This page expired. Please confirm again." if status == 400 else None,
        )

    def _refuse(self, resp: falcon.Response, message: str, status: int = 400) -> None:
        """Show an error page and redirect nowhere (RP-Initiated Logout §3)."""
        self.pages.render(
            resp,
            "error.html",
            status=status,
            title="This sign-out link does not work",
            message=message,
            error=None,
        )
