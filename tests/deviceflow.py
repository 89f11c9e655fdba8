"""Drive the device flow through falcon's TestClient: request, the /device page, polls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from falcon import testing

from jwtauth.config.clients import Client
from jwtauth.config.settings import Settings
from jwtauth.oauth.device import GRANT_TYPE
from tests.authflow import Page, cookie_header, parse_page
from tests.helpers import FORM, PASSWORD, USER, basic, client_like
from tests.oidc.browser import Browser

DEVICE_AUTHORIZATION = "/api/v1/device_authorization"
TV = "tv"  # a public device client
CONSOLE, CONSOLE_SECRET = "console", "othersecret"  # a confidential one that may refresh
PLAIN = "plain"  # a confidential client without the device grant


def device_clients(settings: Settings) -> tuple[Client, ...]:
    """Return a public and a confidential device client, and one without the device grant."""
    tv = client_like(settings, TV, public=True, grant_types=frozenset({GRANT_TYPE}), redirect_uris=())
    console = client_like(
        settings, CONSOLE, secret=CONSOLE_SECRET, grant_types=frozenset({GRANT_TYPE, "refresh_token"})
    )
    plain = client_like(settings, PLAIN, secret=CONSOLE_SECRET, grant_types=frozenset({"client_credentials"}))
    return tv, console, plain


def auth_for(client_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """Return (headers, body fields) that authenticate a suite client."""
    if client_id in (CONSOLE, PLAIN):
        return basic(client_id, CONSOLE_SECRET), {}
    if client_id == "testclient":
        return basic(), {}
    return dict(FORM), {"client_id": client_id}


def start(http: testing.TestClient, client_id: str = TV, **params: str) -> testing.Result:
    """POST a device authorization request."""
    headers, body = auth_for(client_id)
    return http.simulate_post(DEVICE_AUTHORIZATION, body=urlencode({**body, **params}), headers=headers)


def started(http: testing.TestClient, client_id: str = TV, **params: str) -> dict[str, Any]:
    """Return the body of a successful device authorization request."""
    result = start(http, client_id, **params)
    assert result.status_code == 200, result.text
    body: dict[str, Any] = result.json
    return body


def poll(http: testing.TestClient, device_code: str, client_id: str = TV) -> testing.Result:
    """Poll the token endpoint once."""
    headers, body = auth_for(client_id)
    fields = {**body, "grant_type": GRANT_TYPE, "device_code": device_code}
    return http.simulate_post("/api/v1/tokens", body=urlencode(fields), headers=headers)


def open_device(http: testing.TestClient, query: str = "", cookie: str | None = None) -> Page:
    """GET /device and return its form."""
    result = http.simulate_get("/device", query_string=query, headers={"Cookie": cookie} if cookie else {})
    return Page(result, parse_page(result.text).hidden, cookie_header(result, cookie))


def post_device(
    http: testing.TestClient,
    page: Page,
    fields: Mapping[str, str | None],
    *,
    cookie: str | None = "",
    remote_addr: str = "127.0.0.1",
) -> Page:
    """POST the page's hidden fields plus `fields` (None removes one); return the next page."""
    sent = dict(page.fields)
    for name, value in fields.items():
        if value is None:
            sent.pop(name, None)
        else:
            sent[name] = value
    jar = page.cookie if cookie == "" else cookie
    headers = {**FORM, **({"Cookie": jar} if jar else {})}
    result = http.simulate_post("/device", body=urlencode(sent), headers=headers, remote_addr=remote_addr)
    return Page(result, parse_page(result.text).hidden, cookie_header(result, jar))


def enter(http: testing.TestClient, user_code: str, *, remote_addr: str = "127.0.0.1") -> Page:
    """Open /device, type `user_code` and return the page that answers (consent on success)."""
    return post_device(http, open_device(http), {"user_code": user_code}, remote_addr=remote_addr)


def approve(
    http: testing.TestClient, user_code: str, decision: str = "allow", **fields: str | None
) -> testing.Result:
    """Enter the code, sign in as the demo user and decide; return the final response."""
    consent = enter(http, user_code)
    assert consent.result.status_code == 200 and 'name="password"' in consent.result.text, consent.result.text
    sent: dict[str, str | None] = {"username": USER, "password": PASSWORD, "decision": decision, **fields}
    return post_device(http, consent, sent).result


def browser_enter(browser: Browser, user_code: str) -> testing.Result:
    """Open /device in `browser` (its cookies, a session among them) and enter `user_code`."""
    browser.open("/device")
    return browser.open("/device", {**browser.fields, "user_code": user_code})


def browser_decide(browser: Browser, decision: str = "allow", **fields: str | None) -> testing.Result:
    """POST the last /device page's fields with `decision` and `fields` (None drops one)."""
    sent = {**browser.fields, "decision": decision, **fields}
    return browser.open("/device", {name: value for name, value in sent.items() if value is not None})
