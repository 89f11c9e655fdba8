"""oidc-client-ts (unmodified, its dist/browser bundle) in Debian's Chromium: SSO across two SPAs, logout.

Two public SPA clients live on a test-local origin (http://127.0.0.1:<port>/a/ and /b/), another
origin than the server's, so every call the library makes from the page (discovery, JWKS, the
token exchange, userinfo, the refresh) goes through CORS. The library checks state, PKCE, the
nonce, and on refresh that sub, auth_time and azp did not change; we check the rest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http import server as httpserver
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.helpers import FIXTURES, PASSWORD, USER
from tests.support import Server, free_port, need

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

HERE = Path(__file__).parent
BUNDLE = HERE / "node" / "node_modules" / "oidc-client-ts" / "dist" / "browser" / "oidc-client-ts.js"


class _Site:
    """Serve the test RPs' page and the library bundle on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.issuer = ""
        site = self

        class Handler(httpserver.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the stdlib's name
                path = self.path.partition("?")[0]
                if path == "/oidc-client-ts.js":
                    body, kind = BUNDLE.read_bytes(), "text/javascript"
                elif path.split("/")[1:2] in (["a"], ["b"]):
                    page = (
                        (HERE / "oidc_client_ts" / "app.html").read_text().replace("__ISSUER__", site.issuer)
                    )
                    body, kind = page.encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = httpserver.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _config(site: _Site, directory: Path) -> Path:
    """Return the demo fixtures plus the two SPA clients (B is first-party: no consent)."""
    text = FIXTURES.read_text()
    for app, first_party in (("a", "false"), ("b", "true")):
        text += f"""
[[clients]]
id = "spa-{app}"
public = true
redirect_uris = ["{site.origin}/{app}/callback.html"]
post_logout_redirect_uris = ["{site.origin}/{app}/logged-out.html"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "email"]
default_scope = "openid"
allowed_origins = ["{site.origin}"]
first_party = {first_party}
"""
    path = directory / "spa.toml"
    path.write_text(text)
    return path


@pytest.fixture
def site(serve: Any, tmp_path: Path) -> Iterator[tuple[_Site, Server]]:
    # Skips on a laptop without the npm packages, fails under CI=true (tests/support.need).
    need(BUNDLE.is_file(), "tests/interop/node has no node_modules: run make node-deps")
    rp = _Site()
    try:
        with serve(config=_config(rp, tmp_path)) as server:
            rp.issuer = server.base
            yield rp, server
    finally:
        rp.httpd.shutdown()
        rp.httpd.server_close()


def _result(page: Page, prefix: str) -> dict[str, Any]:
    page.wait_for_function("() => document.getElementById('out').textContent !== 'loading'")
    text = page.locator("#out").text_content() or ""
    assert text.startswith(prefix + " ") or text == prefix, text
    return json.loads(text.partition(" ")[2]) if text != prefix else {}


def test_sso_across_two_spas_and_logout_ending_both(page: Page, site: tuple[_Site, Server]) -> None:
    rp, server = site
    page.goto(f"{rp.origin}/a/index.html")
    _result(page, "ready")
    page.evaluate("() => { signin(); }")
    page.get_by_label("Email or username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(f"{rp.origin}/a/callback.html*")
    a = _result(page, "user")
    assert a["email"] == USER and a["refresh"] and a["sid"] and a["nonce"].startswith("n-")

    # B: the session stands in for the password, and B is first-party: no page at all.
    page.goto(f"{rp.origin}/b/index.html")
    _result(page, "ready")
    page.evaluate("() => { signin(); }")
    page.wait_for_url(f"{rp.origin}/b/callback.html*")
    b = _result(page, "user")
    assert (b["sub"], b["sid"], b["auth_time"]) == (a["sub"], a["sid"], a["auth_time"])
    page.evaluate("refresh()")  # the refresh grant over CORS; the library compares the new id_token
    refreshed = _result(page, "refreshed")
    assert (refreshed["sub"], refreshed["auth_time"]) == (b["sub"], b["auth_time"])

    # A logs out with its id_token as hint: no confirmation, back to A with the library's state.
    page.goto(f"{rp.origin}/a/index.html")
    _result(page, "ready")
    page.evaluate("() => { signout(); }")
    page.wait_for_url(f"{rp.origin}/a/logged-out.html*")
    _result(page, "logged-out")

    # The session is gone for B too: prompt=none comes back login_required.
    page.goto(f"{rp.origin}/b/index.html")
    _result(page, "ready")
    page.evaluate("() => { signin({prompt: 'none'}); }")
    page.wait_for_url(f"{rp.origin}/b/callback.html*")
    assert page.locator("#out").text_content() == "error login_required"
    # ... and B's refresh token of that session was revoked with it.
    page.evaluate("refresh()")
    page.wait_for_function("() => document.getElementById('out').textContent.startsWith('error')")
    assert "invalid_grant" in (page.locator("#out").text_content() or "")
    assert "Traceback" not in server.output()
