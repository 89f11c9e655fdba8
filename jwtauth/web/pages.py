"""HTML pages: Jinja2 rendering, the stylesheet's CSP hash, and the headers every page carries.

The stylesheet is inlined in a <style> element and allowed by its SHA-256 in the CSP
(CSP3 §8.3 hash-source), computed once here from the very text that is inlined, so the two can
never drift apart. A same-origin stylesheet route would work too; inlining keeps each page a
single self-contained response (it is `no-store` anyway, so a separate file would be fetched
again with every page), adds no route to the public contract, and still forbids every other
style or script: there is no 'unsafe-inline' anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon
import jinja2
from markupsafe import Markup

from jwtauth.web import csrf

STYLESHEET = "page.css"
HTML = "text/html; charset=utf-8"
# Sent with every response of the authorize endpoint, redirects included: Referrer-Policy on a
# 303 also governs the Referer of the redirected request (Fetch §4.4).
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
# The Form Post Response Mode page's one script, allowed by its hash (CSP3 §8.3 hash-source).
AUTO_SUBMIT = "document.forms[0].submit();"
AUTO_SUBMIT_SOURCE = f"'sha256-{base64.b64encode(hashlib.sha256(AUTO_SUBMIT.encode()).digest()).decode()}'"
# Plain words for well-known scopes; any other scope is shown by name.
SCOPE_WORDS = {
    "read": "Read your data",
    "write": "Create and change your data",
    "openid": "Confirm who you are",
    "profile": "See your profile",
    "email": "See your email address",
    "offline_access": "Stay connected when you are away",
}


def describe_scope(scope: Iterable[str]) -> list[str]:
    """Return one plain sentence per scope."""
    return [SCOPE_WORDS.get(s, f"Use the “{s}” permission") for s in scope]


def display_host(uri: str) -> str:
    """Return what a page shows of a URI: the host (and port) of a web URL, any other URI whole."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.hostname:
        return parts.netloc.rpartition("@")[2]
    return uri


def wait_words(seconds: int) -> str:
    """Return a wait in plain words: seconds below a minute, whole minutes (rounded up) above."""
    minutes = math.ceil(seconds / 60)
    return f"{seconds} seconds" if seconds < 60 else f"{minutes} minute{'s' if minutes > 1 else ''}"


def form_target(uri: str) -> str | None:
    """Return the CSP source of a redirect URI, or None when it cannot be expressed safely."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        if not host or not all(c.isalnum() or c in ".-:[]" for c in host):
            return None
        port = f":{parts.port}" if parts.port else ""
        bracketed = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{bracketed}{port}"
    # A private-use scheme (RFC 8252 §7.1) is matched by a scheme-source like `com.example.app:`.
    return f"{parts.scheme}:" if parts.scheme.replace(".", "").replace("-", "").isalnum() else None


def environment(overrides: Path | None = None) -> jinja2.Environment:
    """Return the page templates: an operator's override folder first, then the packaged ones.

    An override folder lets a deployment brand the pages (logo, colours, wording) by shadowing
    any template by name, without forking; what it does not override comes from the package.
    """
    loaders: list[jinja2.BaseLoader] = []
    if overrides is not None and overrides.is_dir():
        loaders.append(jinja2.FileSystemLoader(overrides))
    loaders.append(jinja2.PackageLoader("jwtauth.web", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )


class Pages:
    """Render templates with the security headers and a CSP that allows only our stylesheet."""

    def __init__(self, overrides: Path | None = None) -> None:
        templates = environment(overrides)
        assert templates.loader is not None  # set by environment()
        css = templates.loader.get_source(templates, STYLESHEET)[0]
        if "</" in css:
            raise ValueError(f"{STYLESHEET} must not contain '</': it is inlined in <style>")
        self.templates = templates
        # Our own file (no "</" checked above), inlined verbatim so that its hash matches.
        self.stylesheet = Markup(css)  # noqa: S704
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        self.style_source = f"'sha256-{digest}'"

    def policy(self, form_targets: Iterable[str] = (), scripts: Iterable[str] = ()) -> str:
        """Return the Content-Security-Policy: only our stylesheet, and only the scripts named."""
        # Chromium also applies form-action to the redirect that answers a form submission, so
        # the client's redirect URI must be listed next to 'self' or the 303 would be blocked.
        actions = " ".join(form_targets) or "'none'"
        script = f"script-src {' '.join(scripts)}; " if scripts else ""
        return (
            f"default-src 'none'; {script}style-src {self.style_source}; form-action {actions}; "
            "frame-ancestors 'none'; base-uri 'none'"
        )

    def render(
        self,
        resp: falcon.Response,
        template: str,
        *,
        status: int = 200,
        form_targets: Iterable[str] = (),
        **context: Any,
    ) -> None:
        """Render `template` into `resp` with its headers."""
        resp.status = status
        resp.content_type = HTML
        resp.set_headers(SECURITY_HEADERS)
        if form_targets:
            # A page's own form must carry its Origin (under no-referrer browsers send "null"),
            # so the POST can prove it came from this origin (issue 18); others get no Referer.
            resp.set_header("Referrer-Policy", "same-origin")
        resp.set_header("Content-Security-Policy", self.policy(form_targets))
        resp.text = self.templates.get_template(template).render(stylesheet=self.stylesheet, **context)

    def form_post(self, resp: falcon.Response, action: str, fields: Iterable[tuple[str, str]]) -> None:
        """Render the Form Post Response Mode page: a form the browser submits at once (§2).

        The only script is AUTO_SUBMIT, allowed by its hash; without script a button submits it.
        """
        target = form_target(action)
        script = Markup(AUTO_SUBMIT)  # noqa: S704  # our constant, whose hash the CSP names
        targets = [target] if target else []
        context: dict[str, Any] = {"action": action, "fields": fields, "auto_submit": script}
        self.render(resp, "form_post.html", form_targets=targets, **context)
        resp.set_header("Content-Security-Policy", self.policy(targets, [AUTO_SUBMIT_SOURCE]))


def form_token(
    req: falcon.Request,
    resp: falcon.Response,
    fields: Mapping[str, str],
    names: Sequence[str],
    *,
    secure: bool,
    now: float,
) -> str:
    """Return the CSRF token a page's form carries, (re)setting this browser's secret cookie."""
    cookie = csrf.cookie_name(secure)
    secret = csrf.browser_secret(req.cookies.get(cookie))
    resp.set_cookie(
        cookie, secret, max_age=csrf.TTL, path="/", secure=secure, http_only=True, same_site="Lax"
    )
    return csrf.issue(secret, fields, names, now=now)


def form_token_ok(
    req: falcon.Request,
    token: str | None,
    fields: Mapping[str, str],
    names: Sequence[str],
    *,
    issuer: str,
    now: float,
) -> bool:
    """Tell whether a form POST carries the token `form_token` gave this browser, from our origin.

    A POST whose `Origin` is another origin is refused like a bad token: without `__Host-` (an
    http issuer) a sibling host can plant a CSRF cookie it knows (cookie tossing, issue 18).
    """
    if not csrf.same_origin(req.get_header("Origin"), issuer):
        return False
    secret = req.cookies.get(csrf.cookie_name(issuer.startswith("https://")))
    return csrf.check(secret, token, fields, names, now=now)
