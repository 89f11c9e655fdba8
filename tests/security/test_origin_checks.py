"""Issue 18: every cookie-bearing form POST checks `Origin`, not only the /authorize consent.

The /device code-entry POST and the /logout confirmation POST carry a CSRF token keyed by a
cookie; on an http issuer a sibling host can plant that cookie (cookie tossing), so like the
consent POST they refuse a POST whose `Origin` is another origin (web.pages.form_token_ok).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from falcon import testing

from jwtauth.config.settings import Settings
from tests.authflow import parse_page
from tests.deviceflow import device_clients, open_device, started
from tests.helpers import FORM, ISSUER, MakeApp
from tests.oidc.browser import Browser, answer
from tests.oidc.flow import OPENID_QUERY

FOREIGN = ["http://evil.testserver", "null", "https://testserver", "http://testserver:81"]


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    return make_app(clients=device_clients(settings))


def enter_code(http: testing.TestClient, origin: str | None) -> testing.Result:
    """Type a live user code into /device, the POST coming from `origin`."""
    user_code = started(http)["user_code"]
    page = open_device(http)
    headers = {**FORM, "Cookie": page.cookie or "", **({"Origin": origin} if origin else {})}
    body = urlencode({**page.fields, "user_code": user_code})
    return http.simulate_post("/device", body=body, headers=headers)


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_cross_origin_device_code_entry_is_refused(http: testing.TestClient, origin: str) -> None:
    result = enter_code(http, origin)
    assert result.status_code == 400 and 'name="decision"' not in result.text


@pytest.mark.parametrize("origin", [ISSUER, None])
def test_a_same_origin_or_origin_less_code_entry_passes(http: testing.TestClient, origin: str | None) -> None:
    result = enter_code(http, origin)
    assert result.status_code == 200 and 'name="decision"' in result.text


def confirm_logout(http: testing.TestClient, origin: str | None) -> tuple[Browser, testing.Result]:
    """Sign in, open the logout confirmation, and post it from `origin`; return browser and answer."""
    browser = Browser(http)
    assert "code" in answer(browser.sign_in(OPENID_QUERY))
    jar = {"Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}
    page = http.simulate_get("/logout", headers=jar)
    assert 'name="logout"' in page.text
    for name, cookie in page.cookies.items():
        browser.cookies[name] = cookie.value
    headers = {
        **FORM,
        "Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items()),
        **({"Origin": origin} if origin else {}),
    }
    fields = {**parse_page(page.text).hidden, "logout": "yes"}
    return browser, http.simulate_post("/logout", body=urlencode(fields), headers=headers)


def signed_in(browser: Browser) -> bool:
    return "code" in answer(browser.get({**OPENID_QUERY, "prompt": "none"}))


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_cross_origin_logout_confirmation_logs_nobody_out(http: testing.TestClient, origin: str) -> None:
    browser, result = confirm_logout(http, origin)
    assert result.status_code == 400 and 'name="logout"' in result.text
    assert signed_in(browser)


@pytest.mark.parametrize("origin", [ISSUER, None])
def test_a_same_origin_logout_confirmation_logs_out(http: testing.TestClient, origin: str | None) -> None:
    browser, result = confirm_logout(http, origin)
    assert result.status_code == 200 and "signed out" in result.text
    assert not signed_in(browser)
