"""Issue 18, item 8: cookie tossing on http issuers.

Under an `http://` issuer the CSRF cookie cannot be `__Host-`, so a sibling host (or another
port of the same host) can plant one whose token it computed for itself. An `http://` issuer is
refused unless it is loopback or the development setting `allow_http_issuer` says so, and a
consent POST whose `Origin` (set by the browser, never by a page) is not the issuer's is refused
before any password check; the page's `Referrer-Policy: same-origin` makes our own form send it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from falcon import testing

from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import load_settings
from tests.authflow import code_from, open_page, submit
from tests.helpers import FORM, ISSUER, PASSWORD, README_QUERY, USER


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jwtauth.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("issuer", ["http://auth.example.com", "http://10.0.0.5:8000", "http://[2001:db8::1]"])
def test_a_non_loopback_http_issuer_is_refused(tmp_path: Path, issuer: str) -> None:
    with pytest.raises(ConfigError, match="allow_http_issuer"):
        load_settings(write(tmp_path, f'issuer = "{issuer}"\n'), env={})
    with pytest.raises(ConfigError, match="JWTAUTH_ISSUER"):
        load_settings(None, env={"JWTAUTH_ISSUER": issuer})


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:9000"])
def test_loopback_http_issuers_stay_allowed(tmp_path: Path, issuer: str) -> None:
    assert load_settings(write(tmp_path, f'issuer = "{issuer}"\n'), env={}).issuer == issuer


def test_the_development_setting_allows_an_http_issuer(tmp_path: Path) -> None:
    text = 'issuer = "http://auth.example.com"\nallow_http_issuer = true\n'
    assert load_settings(write(tmp_path, text), env={}).issuer == "http://auth.example.com"


def submit_from(http: testing.TestClient, origin: str | None) -> testing.Result:
    page = open_page(http, README_QUERY)
    fields = {**page.fields, "decision": "allow", "username": USER, "password": PASSWORD}
    headers = {**FORM, "Cookie": page.cookie or "", **({"Origin": origin} if origin else {})}
    return http.simulate_post("/authorize", body=urlencode(fields), headers=headers)


@pytest.mark.parametrize("origin", ["http://evil.testserver", "null", "https://testserver", "http://testserver:81"])
def test_a_cross_origin_consent_post_is_refused(http: testing.TestClient, origin: str) -> None:
    result = submit_from(http, origin)
    assert result.status_code == 400 and "Location" not in result.headers


def test_a_same_origin_or_origin_less_post_passes(http: testing.TestClient) -> None:
    assert submit_from(http, ISSUER).status_code == 303
    code_from(submit(http, open_page(http, README_QUERY)))


def test_the_page_makes_the_browser_send_its_origin(http: testing.TestClient) -> None:
    result = http.simulate_get("/authorize", query_string=urlencode(README_QUERY))
    assert result.headers["Referrer-Policy"] == "same-origin"
