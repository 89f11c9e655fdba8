"""Drive the authorize page with Debian's Chromium against a real `jwtauth serve`.

There is no network to follow the 303 to www.example.com: the tests read the Location of the
POST's response, and check that the browser did set off towards it (CSP form-action allowed it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Page, Response

from jwtauth.cli import keyfolder
from tests.authflow import redirect_params
from tests.helpers import PASSWORD, README_QUERY, USER
from tests.support import running_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CLIENT_SITE = "https://www.example.com/"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run one `jwtauth serve` (what the `serve` fixture runs) for the module's tests."""
    directory = tmp_path_factory.mktemp("browser")
    keyfolder.ensure(directory / "keys", "ES256", now=time.time(), retire_after=960)
    with running_server(keys_dir=directory / "keys", log_dir=directory) as server:  # embedded store
        yield server.base


def console_of(page: Page) -> list[str]:
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    return messages


def open_authorize(page: Page, base: str, query: dict[str, str]) -> None:
    response = page.goto(f"{base}/authorize/?{urlencode(query)}")
    assert response is not None and response.status == 200


def decide(page: Page, base: str, click: Callable[[], None]) -> Response:
    """Submit the form with `click`; return the POST's response once the browser follows it."""
    with (
        page.expect_response(lambda r: r.request.method == "POST" and r.url.startswith(base)) as posted,
        page.expect_request(lambda r: r.url.startswith(CLIENT_SITE)) as followed,
    ):
        click()
    assert followed.value.redirected_from is not None  # followed the 303, not blocked by CSP
    assert followed.value.method == "GET"  # 303: the password is not posted again
    response = posted.value
    assert response.status == 303
    return response


def test_sign_in_with_the_keyboard_allow_and_exchange_the_code(page: Page, base: str) -> None:
    console = console_of(page)
    open_authorize(page, base, README_QUERY)
    # Focus starts in the username field; Tab moves to the password; Enter submits "allow".
    # Chromium applies autofocus a moment after the load event: keys typed before it are lost.
    page.wait_for_function("document.activeElement && document.activeElement.name === 'username'")
    page.keyboard.type(USER)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    response = decide(page, base, lambda: page.keyboard.press("Enter"))
    location = response.headers["location"]
    assert location.startswith(CLIENT_SITE + "?code=")
    params = redirect_params(location)
    assert params["state"] == "somestate" and params["iss"] == base
    token = requests.post(
        base + "/api/v1/tokens/",
        auth=("testclient", "testpassword"),
        data={"grant_type": "authorization_code", "code": params["code"]},
        timeout=5,
    )
    assert token.status_code == 200, token.text
    assert {"access_token", "refresh_token"} <= set(token.json())
    assert not [m for m in console if "Content Security Policy" in m]


def test_deny_sends_access_denied(page: Page, base: str) -> None:
    open_authorize(page, base, README_QUERY)
    response = decide(page, base, lambda: page.get_by_role("button", name="Deny").click())
    params = redirect_params(response.headers["location"])
    assert params["error"] == "access_denied" and params["state"] == "somestate"
    assert "code" not in params


def test_implicit_puts_the_token_in_the_fragment(page: Page, base: str) -> None:
    open_authorize(page, base, {**README_QUERY, "response_type": "token"})
    page.get_by_label("Email or username").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    response = decide(page, base, lambda: page.get_by_role("button", name="Allow").click())
    location = response.headers["location"]
    assert urlsplit(location).query == ""
    params = redirect_params(location, fragment=True)
    assert params["token_type"] == "Bearer" and params["state"] == "somestate"
    assert params["access_token"].count(".") == 2 and "refresh_token" not in params


def test_wrong_password_shows_one_message_and_keeps_the_styles(page: Page, base: str) -> None:
    console = console_of(page)
    open_authorize(page, base, README_QUERY)
    page.get_by_label("Email or username").fill(USER)
    page.get_by_label("Password").fill("wrong")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Allow").click()
    assert posted.value.status == 400
    assert page.get_by_role("alert").inner_text() == "The email or password is not correct."
    assert page.get_by_label("Email or username").input_value() == USER
    assert page.get_by_label("Password").input_value() == ""
    # The inline stylesheet applied: its CSP hash matched in a real browser.
    color = page.get_by_role("button", name="Allow").evaluate("b => getComputedStyle(b).backgroundColor")
    assert color == "rgb(36, 84, 214)"
    assert not [m for m in console if "Content Security Policy" in m]


def test_focus_order_and_phone_width(browser: Browser, base: str) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    try:
        tab = context.new_page()
        open_authorize(tab, base, README_QUERY)
        # autofocus lands at the page's next rendering opportunity, after goto has returned: on a
        # loaded box the first read came before it (the body, "undefined:undefined").
        tab.wait_for_function("document.activeElement !== document.body")
        order = []
        for _ in range(4):
            order.append(tab.evaluate("document.activeElement.name + ':' + document.activeElement.value"))
            tab.keyboard.press("Tab")
        assert order == ["username:", "password:", "decision:allow", "decision:deny"]
        assert tab.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    finally:
        context.close()


def test_unregistered_redirect_uri_shows_an_error_page(page: Page, base: str) -> None:
    response = page.goto(
        f"{base}/authorize?{urlencode({**README_QUERY, 'redirect_uri': 'https://evil.example'})}"
    )
    assert response is not None and response.status == 400
    assert page.url.startswith(base)
    assert page.get_by_role("heading").inner_text() == "This sign-in link does not work"
