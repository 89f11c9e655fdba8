"""The device flow (RFC 8628) with two unmodified third-party clients, approved in Chromium.

openid-client (npm, its initiateDeviceAuthorization / pollDeviceAuthorizationGrant) and
requests-oauth2client (PyPI, authorize_device / DeviceAuthorizationPollingJob) each start a
device request from the discovery metadata; a real Chromium opens /device (one with the
complete URI, one typing the code in lower case) and approves both as the demo user; both
clients poll at the interval the server gave and get tokens that verify offline.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from requests_oauth2client import DeviceAuthorizationPollingJob, OAuth2Client

from jwtauth.verify import Verifier
from tests.authflow import PASSWORD, USER
from tests.support import need

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

NODE_DIR = Path(__file__).parent / "node"
CLIENT_ID, SECRET = "testclient", "testpassword"


def approve_in_browser(page: Page, url: str, typed: str | None = None, *, signed_in: bool = False) -> None:
    """Open the verification page, confirm the code, sign in as the demo user (or reuse the
    browser session a first sign-in started) and allow."""
    response = page.goto(url)
    assert response is not None and response.status == 200
    if typed is not None:
        page.get_by_label("Code").fill(typed)
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_text("Never enter a code that someone sent you").is_visible()
    if signed_in:
        assert page.get_by_text(f"Signed in as {USER}").is_visible()
        assert page.get_by_label("Password").count() == 0
    else:
        page.get_by_label("Email or username").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("heading", name="Your device is connected").wait_for()


def read_line(proc: subprocess.Popen[str], seconds: float) -> dict[str, Any]:
    """Return the next JSON line the Node client prints, or fail with what it said."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], seconds)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"openid-client printed nothing: {err[-2000:]}")
    body: dict[str, Any] = json.loads(line)
    return body


def test_openid_client_and_requests_oauth2client_approved_in_chromium(
    page: Page, base: str, metadata: dict[str, Any]
) -> None:
    need(shutil.which("node") is not None, "node is missing: make system-deps")
    need((NODE_DIR / "node_modules" / "openid-client").is_dir(), "openid-client is missing: make node-deps")
    node = subprocess.Popen(
        ["node", "device.mjs", base, CLIENT_ID, SECRET, "read"],
        cwd=NODE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        from_node = read_line(node, 20)
        # requests-oauth2client refuses http endpoints unless testing=True: a client-side switch
        # for a server on loopback, nothing changed in what it sends. Its discovery (1.8) does not
        # read device_authorization_endpoint, so that one member is handed over from the metadata.
        oauth2 = OAuth2Client.from_discovery_document(
            metadata, issuer=base, auth=(CLIENT_ID, SECRET), testing=True,
            device_authorization_endpoint=metadata["device_authorization_endpoint"],
        )  # fmt: skip
        from_python = oauth2.authorize_device(scope="read write")
        assert from_python.verification_uri == metadata["issuer"] + "/device"
        approve_in_browser(page, from_node["verification_uri_complete"])
        # Same browser: the first approval's sign-in started a session, so no password this time.
        approve_in_browser(
            page, from_python.verification_uri, typed=from_python.user_code.lower(), signed_in=True
        )
        job = DeviceAuthorizationPollingJob(oauth2, from_python)
        token = None
        for _ in range(5):  # the job sleeps the interval before each poll
            token = job()
            if token is not None:
                break
        node_tokens = read_line(node, 30)
    finally:
        if node.poll() is None:
            node.kill()
        node.communicate()
    assert token is not None and str(token.scope) == "read write" and token.refresh_token
    assert node_tokens["scope"] == "read" and node_tokens["refresh_token"] and node_tokens["expires_in"] > 0
    verifier = Verifier(issuer=base, audience="https://api.example.com")
    for access in (token.access_token, node_tokens["access_token"]):
        claims = verifier.verify(access)
        assert claims["sub"] == USER and claims["client_id"] == CLIENT_ID
