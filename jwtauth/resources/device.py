"""GET, POST /device: the verification page of the device flow (RFC 8628 §3.3).

Two forms on one path, each CSRF-protected like /authorize (jwtauth.web.csrf):
1. enter the code (`user_code`; `?user_code=` pre-fills it and never approves by itself,
   §3.3.1, §5.4);
2. once a code names a waiting request: who asks for what, a warning to approve only a request
   started on one's own device (§5.4 remote phishing), and the sign-in of /authorize (`username`,
   `password`, `decision=allow|deny`) under the same sign-in limits; or, while the browser has a
   live session (jwtauth.oidc.sso), "signed in as …" with Allow and Deny only, bound to the
   session id through the CSRF token exactly as on /authorize. A password sign-in here starts a
   browser session, as on /authorize.

Every POST enters its code again through the guessing limits (jwtauth.accounts.user_codes), so
posting decisions straight away guesses no faster than typing codes. Scope and audience come
from the stored request only: nothing posted here can change them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import falcon

from jwtauth.accounts.clients import ClientRegistry
from jwtauth.accounts.login import Login
from jwtauth.accounts.user_codes import UserCodeGate
from jwtauth.errors import OAuthError, SlowDown
from jwtauth.oauth import device
from jwtauth.observability import NO_EVENTS, Events
from jwtauth.oidc import session as browser_session
from jwtauth.oidc.session import Session
from jwtauth.oidc.sso import BrowserSessions
from jwtauth.resources import paths
from jwtauth.resources.authorize import CSRF_FIELD
from jwtauth.resources.forms import parse_params, read_form
from jwtauth.resources.signed_in import SESSION_FIELD, Refusal, check_password, set_session_cookie
from jwtauth.store.connection import STORE_ERRORS, unavailable
from jwtauth.store.device import DeviceRequest, DeviceStore
from jwtauth.web.pages import Pages, describe_scope, display_host, form_token, form_token_ok, wait_words

log = logging.getLogger("jwtauth")

BOUND = ("user_code", "client_id", SESSION_FIELD)  # the consent form's CSRF token covers these fields
WRONG_CODE = (
    "That code is not valid. Check the code on your device and try again; codes expire after a few minutes."
)


class DeviceResource:
    """The verification page (RFC 8628 §3.3)."""

    def __init__(
        self,
        *,
        issuer: str,
        clients: ClientRegistry,
        login: Login,
        gate: UserCodeGate,
        devices: DeviceStore,
        pages: Pages,
        sessions: BrowserSessions,
        clock: Callable[[], float] = time.time,
        events: Events = NO_EVENTS,
    ) -> None:
        self.clients, self.login, self.gate, self.devices = clients, login, gate, devices
        self.pages, self.clock, self.events, self.sessions = pages, clock, events, sessions
        self.action = urlsplit(issuer).path + paths.DEVICE
        self.issuer = issuer
        self.secure = issuer.startswith("https://")
        self.session_cookie = browser_session.cookie_name(self.secure)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Show the code form, pre-filled from ?user_code= (never approving anything)."""
        try:
            typed = parse_params(req.query_string).get("user_code", "")
        except OAuthError:
            typed = ""
        self._enter_page(req, resp, typed=typed[:32])

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Enter a code, or decide on the request it names."""
        try:
            form = read_form(req)
        except OAuthError as exc:
            self._enter_page(
                req, resp, status=exc.status, message="The form could not be read. Please try again."
            )
            return
        try:
            if "decision" in form:
                self._decide(req, resp, form)
            else:
                self._enter(req, resp, form)
        except SlowDown as locked:
            # RFC 8628 §5.1: guessing codes is limited like guessing passwords.
            resp.set_header("Retry-After", str(locked.retry_after))
            message = f"Too many attempts. Try again in {wait_words(locked.retry_after)}."
            self._enter_page(req, resp, status=429, message=message)
        except STORE_ERRORS as exc:
            if not unavailable(exc):
                raise  # a bug, not an outage: app.py logs it as a 500
            log.error("store unavailable during POST %s: %s", req.path, type(exc).__name__)
            resp.set_header("Retry-After", "1")
            self._done(resp, 503, "Please try again", "The service is busy right now. Try again in a moment.")

    def _enter(self, req: falcon.Request, resp: falcon.Response, form: Mapping[str, str]) -> None:
        """Check the code form; show the consent form for a waiting request."""
        typed = form.get("user_code", "")[:32]
        if not form_token_ok(req, form.get(CSRF_FIELD), {}, (), issuer=self.issuer, now=self.clock()):
            self._enter_page(
                req, resp, status=400, typed=typed, message="This page expired. Please try again."
            )
            return
        found = self._find(req, typed)
        if found is None:
            self._enter_page(req, resp, status=400, typed=typed, message=WRONG_CODE)
            return
        session = self.sessions.current(req.cookies.get(self.session_cookie), now=self.clock())
        self._consent_page(req, resp, found, session=session)

    def _decide(self, req: falcon.Request, resp: falcon.Response, form: Mapping[str, str]) -> None:
        """Check CSRF and the code again, then deny, or sign the user in and approve."""
        now = self.clock()
        bound = {name: form[name] for name in BOUND if name in form}
        if not form_token_ok(req, form.get(CSRF_FIELD), bound, BOUND, issuer=self.issuer, now=now):
            self._enter_page(
                req,
                resp,
                status=400,
                message="This page expired or was changed. Please enter the code again.",
            )
            return
        found = self._find(req, form.get("user_code"))
        if found is None or found[1].client_id != form.get("client_id"):
            self._enter_page(req, resp, status=400, message=WRONG_CODE)
            return
        code, request = found
        decision = form.get("decision")
        if decision == "deny":
            self._finish(resp, code, self.devices.deny(request.ref, now=now), "denied")
            return
        if decision != "allow":
            shown = self.sessions.still(
                req.cookies.get(self.session_cookie), form.get(SESSION_FIELD, ""), now=now
            )
            self._consent_page(req, resp, found, status=400, message="Choose Allow or Deny.", session=shown)
            return
        if SESSION_FIELD in form and "password" not in form:
            session = self.sessions.still(req.cookies.get(self.session_cookie), form[SESSION_FIELD], now=now)
            if session is None:  # signed out, or another user signed in meanwhile: the password again
                message = "Your session has ended. Please sign in again."
                self._consent_page(req, resp, found, status=400, message=message)
                return
        else:
            session = self._sign_in(req, resp, found, form, now)
            if session is None:
                return
            set_session_cookie(resp, self.sessions, session, secure=self.secure, now=now)
        outcome = self.devices.approve(
            request.ref, subject=session.username, auth_time=session.auth_time, now=now
        )
        self._finish(resp, code, outcome, "approved")

    def _sign_in(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        found: tuple[str, DeviceRequest],
        form: Mapping[str, str],
        now: float,
    ) -> Session | None:
        """Return a new session for the password, or render the page again and return None."""
        outcome = check_password(self.login, resp, form, req.context.client_addr, now=now)
        if isinstance(outcome, Refusal):
            username = form.get("username")
            self._consent_page(
                req, resp, found,
                status=outcome.status, message=outcome.message, username=username
            )
            return None
        return self.sessions.signed_in(outcome, now=now)  # a new session id: no fixation

    def _find(self, req: falcon.Request, typed: str | None) -> tuple[str, DeviceRequest] | None:
        """Return (canonical code, waiting request) under the guessing limits, or None."""
        now = self.clock()

        def find(code: str) -> tuple[str, DeviceRequest] | None:
            request = self.devices.find(code, now=now)
            return None if request is None else (code, request)

        return self.gate.enter(typed, req.context.client_addr, now=now, find=find)

    def _finish(self, resp: falcon.Response, code: str, outcome: str, decided: str) -> None:
        """Show what the decision did; a decided code is entered no more."""
        if outcome != "ok":
            # Decided in another tab a moment ago, or just expired: the first decision stands.
            self._done(
                resp, 400, "This code was already used", "Start again on your device to get a new code."
            )
            return
        self.devices.forget(code)
        self.events.device_flow(decided)
        if decided == "approved":
            self._done(
                resp, 200, "Your device is connected", "Go back to your device: it will continue by itself."
            )
        else:
            self._done(resp, 200, "Request denied", "The device was not given access to your account.")

    def _enter_page(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        *,
        status: int = 200,
        typed: str = "",
        message: str | None = None,
    ) -> None:
        self._render(req, resp, "enter", {}, (), status=status, message=message, user_code=typed)

    def _consent_page(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        found: tuple[str, DeviceRequest],
        *,
        status: int = 200,
        message: str | None = None,
        username: str | None = None,
        session: Session | None = None,
    ) -> None:
        """Show who asks for what: with `session`, Allow and Deny only, its id bound to the CSRF token."""
        code, request = found
        client = self.clients.get(request.client_id)
        fields = {"user_code": code, "client_id": request.client_id}
        if session is not None:
            fields[SESSION_FIELD] = session.sid
        self._render(
            req, resp, "consent", fields, BOUND, status=status, message=message, username=username or "",
            signed_in_as=session.username if session else None, user_code=device.shown(code),
            client_name=client.name if client else request.client_id,
            scopes=describe_scope(request.scope), audience=display_host(request.audience),
        )  # fmt: skip

    def _render(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        step: str,
        fields: dict[str, str],
        bound: tuple[str, ...],
        *,
        status: int,
        **context: Any,
    ) -> None:
        """Render a form with a fresh CSRF token bound to this browser and `bound` fields."""
        token = form_token(req, resp, fields, bound, secure=self.secure, now=self.clock())
        hidden = [*fields.items(), (CSRF_FIELD, token)]
        self.pages.render(
            resp, "device.html", status=status, form_targets=["'self'"],
            step=step, action=self.action, hidden=hidden, **context,
        )  # fmt: skip

    def _done(self, resp: falcon.Response, status: int, title: str, message: str) -> None:
        self.pages.render(resp, "device_done.html", status=status, title=title, message=message)
