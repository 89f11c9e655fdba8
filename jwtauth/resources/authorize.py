"""GET, POST /authorize: the login + consent page; code and implicit responses (RFC 6749 §4.1, §4.2).

Every request re-validates every parameter, the POST included: the hidden fields of the page
are only a convenience, and the CSRF token is bound to their exact values.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.accounts.login import Login
from jwtauth.config.client_auth import FAPI2_CODE_TTL
from jwtauth.config.clients import User
from jwtauth.config.settings import Settings
from jwtauth.errors import AccessDenied, InvalidRequest, OAuthError, SlowDown, TemporarilyUnavailable
from jwtauth.oauth import pkce
from jwtauth.oauth.authorization import (
    PARAMS,
    AuthorizationRequest,
    Target,
    UntrustedRedirect,
    error_location,
    identify,
    location,
    response_params,
    validate,
)
from jwtauth.oauth.par import REQUEST_URI, must_push, with_request_uri
from jwtauth.resources import paths
from jwtauth.resources.forms import parse_params, read_form
from jwtauth.store import CodeRecord, CodeStore
from jwtauth.store.connection import STORE_ERRORS, unavailable
from jwtauth.store.par import REQUEST_URI_PREFIX, PushedRequests
from jwtauth.tokens.factory import TokenFactory
from jwtauth.web import csrf
from jwtauth.web.pages import SECURITY_HEADERS, Pages, describe_scope, form_target

log = logging.getLogger("jwtauth")

CSRF_FIELD = "csrf_token"
# One message for an unknown user and a wrong password: no hint which one it was.
BAD_LOGIN = "The email or password is not correct."
# The fields of a fragment response (RFC 6749 §4.2.2); never a refresh token.
IMPLICIT_FIELDS = ("access_token", "token_type", "expires_in", "expires_at", "scope")
# The CSRF token binds every parameter, and a pushed request's request_uri (RFC 9126 §4).
BOUND = (*PARAMS, REQUEST_URI)
GONE = "This sign-in link has expired or was already used. Go back to the application and start again."


def _display_host(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.hostname:
        return parts.netloc.rpartition("@")[2]
    return uri


def _wait_words(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{seconds} seconds" if seconds < 60 else f"{minutes} minute{'s' if minutes > 1 else ''}"


def _hidden(params: Mapping[str, str]) -> list[tuple[str, str]]:
    """Return the form's hidden fields: a pushed request travels by its request_uri alone."""
    if REQUEST_URI in params:
        return [("client_id", params["client_id"]), (REQUEST_URI, params[REQUEST_URI])]
    return list(params.items())


class AuthorizeResource:
    """The authorization endpoint (RFC 6749 §3.1)."""

    def __init__(
        self,
        *,
        settings: Settings,
        clients: ClientRegistry,
        login: Login,
        codes: CodeStore,
        tokens: TokenFactory,
        pages: Pages,
        pushed: PushedRequests,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.clients, self.login, self.pushed = settings, clients, login, pushed
        self.codes, self.tokens = codes, tokens
        self.pages, self.clock = pages, clock
        self.issuer = settings.issuer
        self.action = urlsplit(settings.issuer).path + paths.AUTHORIZE
        self.secure = settings.issuer.startswith("https://")
        self.cookie = csrf.cookie_name(self.secure)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Validate the request from the query and show the login + consent form."""
        try:
            params, uri = self._resolve(parse_params(req.query_string))
            target = identify(self.clients, params)
            req.context.client_id = target.client.client_id  # a registered client: the log lines name it
        except (OAuthError, UntrustedRedirect) as exc:
            self._refuse(resp, exc)
            return
        try:
            request = self._validate(target, params, uri)
        except OAuthError as exc:
            self._redirect(resp, error_location(target, self.issuer, exc))
            return
        self._login_page(req, resp, request)

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
        try:
            self._decide(req, resp, self._validate(target, params, uri), form)
        except OAuthError as exc:
            self._redirect(resp, error_location(target, self.issuer, exc))
        except STORE_ERRORS as exc:
            if not unavailable(exc):
                raise  # a bug, not an outage: app.py logs it as a 500
            # RFC 6749 §4.1.2.1: the client learns to retry; the user is not left on a 500.
            log.error("store unavailable during POST %s: %s", req.path, type(exc).__name__)
            self._redirect(resp, error_location(target, self.issuer, TemporarilyUnavailable()))

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

    def _decide(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        request: AuthorizationRequest,
        form: Mapping[str, str],
    ) -> None:
        """Check the CSRF token, then deny, or sign the user in and grant."""
        now = self.clock()
        if not csrf.check(
            req.cookies.get(self.cookie), form.get(CSRF_FIELD), request.params, BOUND, now=now
        ):
            message = "This page expired or was changed. Please check the details and sign in again."
            self._login_page(req, resp, request, status=400, message=message, username=form.get("username"))
            return
        decision = form.get("decision")
        if decision == "deny":
            self._consume(request, now)
            raise AccessDenied("the user denied the request")  # RFC 6749 §4.1.2.1
        if decision != "allow":
            raise InvalidRequest("decision must be allow or deny")
        user = self._authenticate(req, resp, request, form, now)
        if user is not None:
            self._consume(request, now)
            self._redirect(resp, self._grant(request, user, now))

    def _authenticate(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        request: AuthorizationRequest,
        form: Mapping[str, str],
        now: float,
    ) -> User | None:
        """Return the user, or render the page again with one generic message and return None."""
        username, password = form.get("username"), form.get("password")
        if not username or not password:
            message = "Enter your email or username and your password."
            self._login_page(req, resp, request, status=400, message=message, username=username)
            return None
        try:
            user = self.login.attempt(username, password, req.context.client_addr, now=now)
        except SlowDown as locked:
            # RFC 6749 §4.3.2, RFC 6819 §5.1.4.2.3: locked even for the right password.
            resp.set_header("Retry-After", str(locked.retry_after))
            message = f"Too many failed sign-in attempts. Try again in {_wait_words(locked.retry_after)}."
            self._login_page(req, resp, request, status=429, message=message, username=username)
            return None
        if user is None:
            self._login_page(req, resp, request, status=400, message=BAD_LOGIN, username=username)
            return None
        return user

    def _grant(self, request: AuthorizationRequest, user: User, now: float) -> str:
        """Issue the code or the implicit token and return the redirect Location."""
        target, client = request.target, request.target.client
        if request.response_type == "code":
            record = CodeRecord(
                client_id=client.client_id,
                redirect_uri=target.sent_redirect_uri,  # RFC 6749 §4.1.3 compares with what was sent
                scope=" ".join(request.scope),
                subject=user.username,
                code_challenge=request.code_challenge,
                code_challenge_method=pkce.S256 if request.code_challenge else None,
                auth_time=now,
                audience=(request.audience,),
                dpop_jkt=request.dpop_jkt if request.response_type == "code" else None,
                nonce=request.nonce,
                amr=("pwd",),  # RFC 8176 §2: a password
            )
            ttl = self.settings.code_ttl
            if client.fapi2:  # FAPI 2.0 Security Profile §5.3.2.1: at most 60 seconds
                ttl = min(ttl, FAPI2_CODE_TTL)
            code = self.codes.issue(record, ttl=ttl, now=now)
            return location(target, response_params(target, self.issuer, [("code", code)]))
        body = self.tokens.issue(
            client=client,
            subject=user.username,
            scope=request.scope,
            audience=request.audience,
            auth_time=int(now),
        )
        values = [(name, str(body[name])) for name in IMPLICIT_FIELDS]
        return location(target, response_params(target, self.issuer, values))

    def _login_page(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        request: AuthorizationRequest,
        *,
        status: int = 200,
        message: str | None = None,
        username: str | None = None,
    ) -> None:
        """Render the form with a fresh CSRF token bound to this request and this browser."""
        secret = csrf.browser_secret(req.cookies.get(self.cookie))
        token = csrf.issue(secret, request.params, BOUND, now=self.clock())
        resp.set_cookie(
            self.cookie,
            secret,
            max_age=csrf.TTL,
            path="/",
            secure=self.secure,
            http_only=True,
            same_site="Lax",
        )
        target = request.target
        self.pages.render(
            resp,
            "authorize.html",
            status=status,
            form_targets=["'self'", *filter(None, [form_target(target.redirect_uri)])],
            client_name=target.client.name,
            # A URL client_id (a metadata document) names itself: its host is the one fact about
            # it that is not self-asserted, so the page shows it beside the name (anti-phishing).
            client_host=_display_host(target.client.client_id) if "://" in target.client.client_id else None,
            scopes=describe_scope(request.scope),
            audience=_display_host(request.audience),
            return_to=_display_host(target.redirect_uri),
            action=self.action,
            hidden=[*_hidden(request.params), (CSRF_FIELD, token)],
            username=username or "",
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

    def _redirect(self, resp: falcon.Response, url: str) -> None:
        """Answer 303 See Other: the browser follows with a GET, never re-posting the password."""
        resp.status = falcon.HTTP_303
        resp.set_headers(SECURITY_HEADERS)
        resp.set_header("Content-Security-Policy", self.pages.policy())
        resp.set_header("Location", url)
