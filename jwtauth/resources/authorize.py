"""GET, POST /authorize: the login + consent page; code and implicit responses (RFC 6749 §4.1, §4.2).

Every request re-validates every parameter, the POST included: the hidden fields of the page
are only a convenience, and the CSRF token is bound to their exact values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.accounts.login import Login
from jwtauth.config.clients import User
from jwtauth.config.settings import Settings
from jwtauth.errors import AccessDenied, InvalidRequest, OAuthError, TemporarilyUnavailable
from jwtauth.grants.front_channel import FrontChannel
from jwtauth.oauth.authorization import (
    PARAMS,
    AuthorizationRequest,
    Target,
    UntrustedRedirect,
    error_params,
    identify,
    location,
    response_params,
    validate,
)
from jwtauth.oauth.par import REQUEST_URI, must_push, with_request_uri
from jwtauth.oidc import session as browser_session
from jwtauth.oidc.prompt import Step
from jwtauth.oidc.responses import FORM_POST
from jwtauth.oidc.session import Session
from jwtauth.oidc.sso import BrowserSessions
from jwtauth.resources import paths
from jwtauth.resources.forms import parse_params, read_form
from jwtauth.resources.signed_in import SESSION_FIELD, Refusal, check_password, set_session_cookie
from jwtauth.store.connection import STORE_ERRORS, unavailable
from jwtauth.store.par import REQUEST_URI_PREFIX, PushedRequests
from jwtauth.web import csrf
from jwtauth.web.pages import (
    SECURITY_HEADERS,
    Pages,
    describe_scope,
    display_host,
    form_target,
    form_token,
    form_token_ok,
)

log = logging.getLogger("jwtauth")

CSRF_FIELD = "csrf_token"
# The consent page (no password) names the session it was shown for (SESSION_FIELD); the CSRF
# MAC binds it, as it binds a pushed request's request_uri (RFC 9126 §4).
BOUND = (*PARAMS, SESSION_FIELD, REQUEST_URI)
GONE = "This sign-in link has expired or was already used. Go back to the application and start again."


def _hidden(fields: Mapping[str, str]) -> list[tuple[str, str]]:
    """Return the form's hidden fields: a pushed request travels by its request_uri alone."""
    if REQUEST_URI in fields:
        return [(name, fields[name]) for name in ("client_id", REQUEST_URI, SESSION_FIELD) if name in fields]
    return list(fields.items())


class AuthorizeResource:
    """The authorization endpoint (RFC 6749 §3.1)."""

    def __init__(
        self,
        *,
        settings: Settings,
        clients: ClientRegistry,
        login: Login,
        front: FrontChannel,
        pages: Pages,
        sessions: BrowserSessions,
        pushed: PushedRequests,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.clients, self.login, self.sessions = settings, clients, login, sessions
        self.front, self.pushed = front, pushed
        self.pages, self.clock = pages, clock
        self.issuer = settings.issuer
        self.action = urlsplit(settings.issuer).path + paths.AUTHORIZE
        self.secure = settings.issuer.startswith("https://")
        self.session_cookie = browser_session.cookie_name(self.secure)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Validate the request from the query, then answer at once or show the page it needs."""
        try:
            params, uri = self._resolve(parse_params(req.query_string))
            target = identify(self.clients, params)
            req.context.client_id = target.client.client_id  # a registered client: the log lines name it
        except (OAuthError, UntrustedRedirect) as exc:
            self._refuse(resp, exc)
            return
        self._guarded(req, resp, target, lambda: self._show(req, resp, self._validate(target, params, uri)))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Validate the posted request again, then apply the user's decision."""
        try:
            form = read_form(req)
            params, uri = self._resolve(form)
            target = identify(self.clients, params)
            req.context.client_id = target.client.client_id
        except (OAuthError, UntrustedRedirect) as exc:
            self._refuse(resp, exc)
            return
        self._guarded(
            req, resp, target, lambda: self._decide(req, resp, self._validate(target, params, uri), form)
        )

    def _resolve(self, params: dict[str, str]) -> tuple[dict[str, str], str | None]:
        """Return the request's parameters and request_uri: the pushed ones if it names some.

        RFC 9126 §4: with a request_uri only the pushed parameters count, never merged with
        anything else in the URL or form; the request_uri must belong to the client_id beside it.
        """
        uri = params.get(REQUEST_URI)
        if uri is None or not uri.startswith(REQUEST_URI_PREFIX):
            return params, None  # any other request_uri: validate says request_uri_not_supported
        client_id = params.get("client_id")
        pushed = self.pushed.peek(uri, client_id=client_id, now=self.clock()) if client_id else None
        if pushed is None:
            raise UntrustedRedirect(GONE)
        return pushed, uri

    def _validate(self, target: Target, params: Mapping[str, str], uri: str | None) -> AuthorizationRequest:
        """Validate the request; refuse an unpushed one where pushing is required (RFC 9126 §5)."""
        if uri is not None:
            return with_request_uri(target, params, uri, self.settings)
        if must_push(target.client, self.settings):
            raise InvalidRequest("push the authorization request first (RFC 9126): send a request_uri")
        return validate(target, params, self.settings)

    def _consume(self, request: AuthorizationRequest, now: float) -> None:
        """Spend a pushed request once the user decided (RFC 9126 §4: single use)."""
        uri = request.params.get(REQUEST_URI)
        client_id = request.target.client.client_id
        if uri is not None and self.pushed.take(uri, client_id=client_id, now=now) is None:
            raise InvalidRequest("this authorization request was already used or has expired")

    def _guarded(
        self, req: falcon.Request, resp: falcon.Response, target: Target, run: Callable[[], None]
    ) -> None:
        """Run one step; its OAuth errors and store outages go back to the client's redirect URI."""
        try:
            run()
        except OAuthError as exc:
            self._respond(resp, target, error_params(target, self.issuer, exc))
        except STORE_ERRORS as exc:
            if not unavailable(exc):
                raise  # a bug, not an outage: app.py logs it as a 500
            # RFC 6749 §4.1.2.1: the client learns to retry; the user is not left on a 500.
            log.error("store unavailable during %s %s: %s", req.method, req.path, type(exc).__name__)
            self._respond(resp, target, error_params(target, self.issuer, TemporarilyUnavailable()))

    def _show(self, req: falcon.Request, resp: falcon.Response, request: AuthorizationRequest) -> None:
        """With a session, answer at once or ask for consent only; otherwise ask to sign in."""
        now = self.clock()
        session = self.sessions.current(req.cookies.get(self.session_cookie), now=now)
        step = self.sessions.step(request, session, now=now)  # prompt=none's errors raise here
        if step is Step.GRANT and session is not None:
            self._answer(resp, request, session, now)
        elif step is Step.CONSENT and session is not None:
            self._login_page(req, resp, request, session=session)
        else:
            hinted = request.interaction.login_hint or (session.username if session else None)
            self._login_page(req, resp, request, username=hinted)

    def _decide(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        request: AuthorizationRequest,
        form: Mapping[str, str],
    ) -> None:
        """Check the CSRF token, then deny, or grant with the password or the live session."""
        now = self.clock()
        bound = {**request.params, **({SESSION_FIELD: form[SESSION_FIELD]} if SESSION_FIELD in form else {})}
        if not form_token_ok(req, form.get(CSRF_FIELD), bound, BOUND, issuer=self.issuer, now=now):
            message = "This page expired or was changed. Please check the details and sign in again."
            self._login_page(req, resp, request, status=400, message=message, username=form.get("username"))
            return
        decision = form.get("decision")
        if decision == "deny":
            self._consume(request, now)
            raise AccessDenied("the user denied the request")  # RFC 6749 §4.1.2.1
        if decision != "allow":
            raise InvalidRequest("decision must be allow or deny")
        if SESSION_FIELD in form and "password" not in form:
            session = self._consenting(req, request, form[SESSION_FIELD], now)
            if session is None:
                message = "Your session has ended. Please sign in again."
                self._login_page(req, resp, request, status=400, message=message)
                return
        else:
            user = self._authenticate(req, resp, request, form, now)
            if user is None:
                return
            session = self.sessions.signed_in(user, now=now)
        # The CSRF token names this submission: it is spent once (issue 18), so a replayed POST
        # gets the page again, not a second code or token.
        if not self.front.codes.claim(form.get(CSRF_FIELD) or "", ttl=csrf.TTL):
            message = "This page was already submitted. Please check the details and sign in again."
            self._login_page(req, resp, request, status=400, message=message)
            return
        self._answer(resp, request, session, now)

    def _consenting(
        self, req: falcon.Request, request: AuthorizationRequest, sid: str, now: float
    ) -> Session | None:
        """Return the session a consent-only page was shown for, if it still may stand in for the password."""
        session = self.sessions.still(req.cookies.get(self.session_cookie), sid, now=now)
        if session is None:
            return None
        if self.sessions.step(request, session, now=now) is Step.LOGIN:
            return None  # max_age passed while the page was open
        return session

    def _answer(
        self, resp: falcon.Response, request: AuthorizationRequest, session: Session, now: float
    ) -> None:
        """Issue the response, remember the consent in the session cookie, and redirect."""
        self._consume(request, now)  # a pushed request answers once, by consent or by SSO
        client = request.target.client
        session = session.with_client(client.client_id)  # its logout tells this client (back-channel)
        if not client.first_party:
            session = session.with_consent(client.client_id, request.audience, request.scope)
        set_session_cookie(resp, self.sessions, session, secure=self.secure, now=now)
        values = self.front.issue(request, session, now)
        self._respond(resp, request.target, response_params(request.target, self.issuer, values))

    def _authenticate(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        request: AuthorizationRequest,
        form: Mapping[str, str],
        now: float,
    ) -> User | None:
        """Return the user, or render the page again with one generic message and return None."""
        outcome = check_password(self.login, resp, form, req.context.client_addr, now=now)
        if isinstance(outcome, Refusal):
            username = form.get("username")
            self._login_page(
                req, resp, request,
                status=outcome.status, message=outcome.message, username=username
            )
            return None
        return outcome

    def _login_page(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        request: AuthorizationRequest,
        *,
        status: int = 200,
        message: str | None = None,
        username: str | None = None,
        session: Session | None = None,
    ) -> None:
        """Render the form with a fresh CSRF token bound to this request, this browser, this session.

        With `session` it is the consent page: no password fields, the session id bound instead.
        """
        bound = {**request.params, **({SESSION_FIELD: session.sid} if session else {})}
        token = form_token(req, resp, bound, BOUND, secure=self.secure, now=self.clock())
        target = request.target
        self.pages.render(
            resp,
            "authorize.html",
            status=status,
            form_targets=["'self'", *filter(None, [form_target(target.redirect_uri)])],
            client_name=target.client.name,
            # A URL client_id (a metadata document) names itself: its host is the one fact about
            # it that is not self-asserted, so the page shows it beside the name (anti-phishing).
            client_host=display_host(target.client.client_id) if "://" in target.client.client_id else None,
            scopes=describe_scope(request.scope),
            audience=display_host(request.audience),
            return_to=display_host(target.redirect_uri),
            action=self.action,
            hidden=[*_hidden(bound), (CSRF_FIELD, token)],
            username=username or "",
            signed_in_as=session.username if session else None,
            message=message,
        )

    def _refuse(self, resp: falcon.Response, exc: OAuthError | UntrustedRedirect) -> None:
        """Show an error page and redirect nowhere (RFC 6749 §4.1.2.1, RFC 9700 §4.11)."""
        if isinstance(exc, UntrustedRedirect):
            status, message, error = 400, str(exc), None
        else:
            status, message, error = exc.status, exc.description or "The request is malformed.", exc.error
        self.pages.render(
            resp,
            "error.html",
            status=status,
            title="This sign-in link does not work",
            message=message,
            error=error,
        )

    def _respond(self, resp: falcon.Response, target: Target, params: list[tuple[str, str]]) -> None:
        """Send the response to the client: a form the browser posts (form_post) or a redirect."""
        if target.mode == FORM_POST:
            self.pages.form_post(resp, target.redirect_uri, params)  # Form Post Response Mode §2
        else:
            self._redirect(resp, location(target, params))

    def _redirect(self, resp: falcon.Response, url: str) -> None:
        """Answer 303 See Other: the browser follows with a GET, never re-posting the password."""
        resp.status = falcon.HTTP_303
        resp.set_headers(SECURITY_HEADERS)
        resp.set_header("Content-Security-Policy", self.pages.policy())
        resp.set_header("Location", url)
