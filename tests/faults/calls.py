"""HTTP calls the fault tests make against a real `jwtauth serve`, each bounded in time.

Every call has a client timeout of TIMEOUT seconds and asserts it was answered within BOUND:
a worker stuck on a dead store shows up as a failed assertion, never as a hung test.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from tests.authflow import parse_page
from tests.helpers import PASSWORD, README_QUERY, USER

TIMEOUT = 3.0
BOUND = 2.0
AUTH = ("testclient", "testpassword")
TOKENS = "/api/v1/tokens"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def timed(method: str, url: str, **kwargs: Any) -> requests.Response:
    """Send one request; fail unless it was answered within BOUND seconds."""
    started = time.monotonic()
    response = requests.request(method, url, timeout=TIMEOUT, **kwargs)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"{method} {url} took {elapsed:.2f} s"
    assert response.status_code != 500, response.text  # never a server_error for a store fault
    return response


def token(base: str, form: dict[str, str]) -> requests.Response:
    """POST the token endpoint as testclient (client_secret_basic)."""
    return timed("POST", base + TOKENS, data=form, auth=AUTH, headers=FORM)


def client_credentials(base: str) -> requests.Response:
    return token(base, {"grant_type": "client_credentials"})


def password(base: str) -> requests.Response:
    return token(base, {"grant_type": "password", "username": USER, "password": PASSWORD})


def refresh(base: str, refresh_token: str) -> requests.Response:
    return token(base, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def exchange(base: str, code: str) -> requests.Response:
    """Redeem a code issued for README_QUERY's redirect URI."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": README_QUERY["redirect_uri"]}
    return token(base, form)


def jwks(base: str) -> requests.Response:
    return timed("GET", base + "/jwks")


def login_page(base: str) -> tuple[dict[str, str], str]:
    """GET the authorize page of the old README's URL; return its hidden fields and CSRF cookie."""
    page = timed("GET", base + "/authorize", params=README_QUERY)
    assert page.status_code == 200, page.text
    cookie = "; ".join(f"{name}={value}" for name, value in page.cookies.items())
    return parse_page(page.text).hidden, cookie


def allow(base: str, fields: dict[str, str], cookie: str) -> requests.Response:
    """POST the login form as the demo user who clicks allow; the 303 is not followed."""
    form = {**fields, "username": USER, "password": PASSWORD, "decision": "allow"}
    return timed(
        "POST", base + "/authorize", data=form, headers={**FORM, "Cookie": cookie}, allow_redirects=False
    )


def redirect_params(response: requests.Response) -> dict[str, str]:
    """Return the query parameters of a 303's Location."""
    assert response.status_code == 303, response.text
    return dict(parse_qsl(urlsplit(response.headers["Location"]).query))


def authorize(base: str) -> str:
    """Drive the login + consent page like a browser and return the authorization code."""
    fields, cookie = login_page(base)
    params = redirect_params(allow(base, fields, cookie))
    assert params["state"] == README_QUERY["state"], params
    return params["code"]


def ok(response: requests.Response) -> dict[str, Any]:
    """Return the JSON body of a 200."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_unavailable(response: requests.Response) -> None:
    """Assert the store-outage answer: 503 temporarily_unavailable, Retry-After, no-store."""
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable", response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["Cache-Control"] == "no-store"


def assert_invalid_grant(response: requests.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant", response.text
    assert response.headers["Cache-Control"] == "no-store"


def wellformed_refresh_token() -> str:
    """Return a refresh token of the right shape that no store knows (it reaches Redis)."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64(secrets.token_bytes(16))}.{b64(secrets.token_bytes(32))}"


def until(check: Any, *, timeout: float, what: str, step: float = 0.05) -> Any:
    """Return the first truthy result of `check()` within `timeout` seconds, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(step)
