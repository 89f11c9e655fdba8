"""The authorization endpoint: redirect-URI bypasses, error-redirect ordering, duplicated and
hostile parameters, reflected XSS, clickjacking, CSRF, tampering, login enumeration, and where
codes and tokens travel (RFC 6749 §3.1.2, §4.1.2.1, §10.6, §10.12, §10.15; RFC 9700 §4.1, §4.11;
RFC 9207; RFC 8252 §7.1)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from falcon import testing

from jwtauth.accounts.hashing import hash_secret
from jwtauth.config.reader import ConfigError
from jwtauth.config.settings import parse_settings
from tests.authflow import Page, open_page, parse_page, redirect_params, submit
from tests.helpers import FORM, ISSUER, MULTI, MULTI_URIS, PASSWORD, SPA, SPA_URI, USER, Clock, pkce_pair

README = {"response_type": "code", "client_id": "testclient", "redirect_uri": "https://www.example.com"}
CODE_KEYS = re.compile(rb"\{c:")


def codes_in(state: Mapping[bytes, Any]) -> list[bytes]:
    return [k for k in state if CODE_KEYS.search(k)]


def assert_frame_proof(result: testing.Result) -> None:
    """RFC 6749 §10.13: no page of the endpoint may be framed; nor may it leak via Referer."""
    assert result.headers.get("X-Frame-Options") == "DENY", result.headers
    policy = result.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy, policy
    assert "script-src" not in policy  # default-src 'none' covers scripts: no script at all
    # same-origin on a form page: its POST must carry its Origin (issue 18); no cross-origin Referer.
    assert result.headers.get("Referrer-Policy") in ("no-referrer", "same-origin")
    assert result.headers.get("Cache-Control") == "no-store"
    assert result.headers.get("X-Content-Type-Options") == "nosniff"


def assert_error_page(result: testing.Result) -> None:
    """An error shown to the user, sent nowhere (RFC 6749 §4.1.2.1, RFC 9700 §4.11)."""
    assert result.status_code == 400, result.text
    assert "Location" not in result.headers
    assert result.headers["Content-Type"].startswith("text/html")
    assert_frame_proof(result)


# --- redirect-URI bypasses -------------------------------------------------------------------------

BYPASSES = [
    # "https://www.example.com/" is the registered URI itself (RFC 3986 §6.2.3): tests/oidc.
    "https://www.example.com//",
    "https://www.example.com/?",
    "https://www.example.com/#",
    "https://www.example.com/cb",
    "https://www.example.com/..",
    "https://www.example.com/%2e%2e/",
    "https://www.example.com/..;/evil",
    "https://www.example.com/%2e%2e;/evil",
    "https://www.example.com%2f..",
    "https://www.example.com?",
    "https://www.example.com?x=1",
    "https://www.example.com#",
    "https://www.example.com#x",
    "https://www.example.com@evil.example",
    "https://evil.example@www.example.com",
    "https://www.example.com:@evil.example",
    "https://www.example.com%40evil.example",
    "https://www.example.com.evil.example",
    "https://www.example.com%2eevil.example",
    "https://wwwxexample.com",
    "https://WWW.EXAMPLE.COM",
    "HTTPS://www.example.com",
    "https://www.example.com.",
    "https://www.example.com:443",
    "https://www.example.com:8443",
    "http://www.example.com",
    "//www.example.com",
    "www.example.com",
    "https:/www.example.com",
    "https:www.example.com",
    "https://www.example.com\r\nLocation: https://evil.example",
    "https://www.example.com\nSet-Cookie: a=b",
    "https://www.example.com%0d%0aLocation:%20https://evil.example",
    " https://www.example.com",
    "https://www.example.com ",
    "https://www.example.com\t",
    "https://www.ex\u0430mple.com",  # Cyrillic a
    "https://www.example.com\u3002evil.example",  # ideographic full stop
    "https://www\uff0eexample\uff0ecom",  # fullwidth full stops
    "https://xn--www-example-com",
    "https://www.example.com\\@evil.example",
    "https://www.example.com/\\evil.example",
    "https://evil.example\\.www.example.com",
    "https://www.example.com\x00",
    "javascript://www.example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "file:///etc/passwd",
    "https://www.example.com/%09",
]


@pytest.mark.parametrize("uri", BYPASSES)
def test_no_redirect_uri_bypass_gets_a_redirect(http: testing.TestClient, state: Any, uri: str) -> None:
    before = state()
    page = open_page(http, {**README, "redirect_uri": uri, "state": "s"})
    assert_error_page(page.result)
    assert "evil" not in page.result.headers.get("Location", "")
    # Nor does a POST that names the bypass (with the demo client's real form values).
    good = open_page(http, README)
    result = submit(http, good, changes={"redirect_uri": uri})
    assert result.status_code == 400 and "Location" not in result.headers, result.text
    assert codes_in(state()) == codes_in(before) == []


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb?tenant=2",
        "https://app.example.com/cb?tenant=1&x=y",
        "https://app.example.com/cb?x=y&tenant=1",
        "https://app.example.com/cb",
        "https://app.example.com/cb?TENANT=1",
        "https://app.example.com/cb/?tenant=1",
        "https://app.example.com/cb?tenant=1#",
        "https://app.example.com/cb?tenant=%31",
        "https://app.example.com/other/",
        "https://app.example.com/other/../cb?tenant=1",
        "https://app.example.com/OTHER",
    ],
)
def test_registered_queries_and_paths_match_exactly(http: testing.TestClient, uri: str) -> None:
    page = open_page(http, {"response_type": "code", "client_id": MULTI[0], "redirect_uri": uri})
    assert_error_page(page.result)


def test_two_registered_uris_and_none_sent_is_an_error_page(http: testing.TestClient) -> None:
    assert_error_page(open_page(http, {"response_type": "code", "client_id": MULTI[0]}).result)


# --- error-redirect ordering (RFC 6749 §4.1.2.1) -----------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"response_type": "code", "client_id": "nobody", "redirect_uri": "https://www.example.com"},
        {"response_type": "nonsense", "client_id": "nobody", "redirect_uri": "https://www.example.com"},
        {"response_type": "code", "redirect_uri": "https://www.example.com"},
        {"response_type": "nonsense", "client_id": "testclient", "redirect_uri": "https://evil.example"},
        {"scope": "admin", "client_id": "testclient", "redirect_uri": "https://evil.example"},
        {"client_id": SPA, "redirect_uri": "https://www.example.com"},  # another client's URI
        {"response_type": "token", "client_id": "testclient", "redirect_uri": "https://evil.example"},
    ],
)
def test_an_error_never_redirects_to_an_unvalidated_uri(
    http: testing.TestClient, query: dict[str, str]
) -> None:
    assert_error_page(open_page(http, query).result)


@pytest.mark.parametrize(
    "query",
    [
        "response_type=code&client_id=testclient&redirect_uri=https://www.example.com&state=a&state=b",
        "response_type=code&client_id=testclient&client_id=other&redirect_uri=https://www.example.com",
        "response_type=code&client_id=testclient&redirect_uri=https://www.example.com"
        "&redirect_uri=https://evil.example",
        "response_type=code&response_type=token&client_id=testclient&redirect_uri=https://www.example.com",
        "response_type=code&client_id=testclient&redirect_uri=https://www.example.com&scope=read&scope=write",
        "response_type=code&client_id=testclient&redirect_uri=https://www.example.com"
        "&code_challenge=a&code_challenge=b&code_challenge_method=S256",
    ],
)
def test_duplicated_parameters_are_an_error_page(http: testing.TestClient, query: str) -> None:
    """RFC 6749 §3.1: a repeated parameter makes the whole request untrustworthy, its URI too."""
    assert_error_page(open_page(http, query).result)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"response_type": "nonsense"}, "unsupported_response_type"),
        ({"response_type": "code none"}, "unsupported_response_type"),
        ({"response_type": "code code"}, "unsupported_response_type"),
        ({"response_type": "CODE"}, "unsupported_response_type"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"scope": "read  write"}, "invalid_scope"),
        ({"resource": "https://evil.example"}, "invalid_target"),
        ({"code_challenge_method": "plain", "code_challenge": "a" * 43}, "invalid_request"),
    ],
)
def test_other_errors_go_back_to_the_registered_uri_with_state_and_iss(
    http: testing.TestClient, query: dict[str, str], error: str
) -> None:
    result = http.simulate_get("/authorize", params={**README, "state": "xyz", **query})
    assert result.status_code == 303, result.text
    location = result.headers["Location"]
    assert location.startswith("https://www.example.com/?")
    params = redirect_params(location)
    assert params["error"] == error and params["state"] == "xyz"
    assert params["iss"] == ISSUER  # RFC 9207: the client can tell which server answered
    assert_frame_proof(result)


# --- state --------------------------------------------------------------------------------------------

HOSTILE_STATES = [
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "a\r\nSet-Cookie: pwned=1",
    "a&code=injected&iss=https://evil.example",
    "a#access_token=injected",
    "\u202e\u0000bidi",
    "x" * 4000,
    "%3Cscript%3E",
]


@pytest.mark.parametrize("value", HOSTILE_STATES)
def test_hostile_state_comes_back_exactly_and_inert(http: testing.TestClient, value: str) -> None:
    query = urlencode({**README, "state": value})
    page = open_page(http, query)
    if "\x00" in value:
        assert_error_page(page.result)  # NUL is refused outright
        return
    assert page.result.status_code == 200
    assert "<script" not in page.result.text and "<img" not in page.result.text
    assert page.fields["state"] == value
    result = submit(http, page)
    assert result.status_code == 303
    location = result.headers["Location"]
    assert "\r" not in location and "\n" not in location and " " not in location
    params = dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))
    assert params["state"] == value and params["code"] != "injected" and params["iss"] == ISSUER
    assert urlsplit(location).fragment == ""


def test_missing_state_is_not_invented(http: testing.TestClient) -> None:
    result = submit(http, open_page(http, README))
    assert "state" not in redirect_params(result.headers["Location"])


# --- reflected XSS through every echoed value ----------------------------------------------------------

XSS = '"><svg onload=alert(1)><script>alert(1)</script>'


@pytest.mark.parametrize(
    "query",
    [
        {**README, "state": XSS},
        {**README, "scope": XSS},
        {**README, "resource": XSS},
        {**README, "code_challenge": XSS, "code_challenge_method": "S256"},
        {**README, "code_challenge_method": XSS},
        {**README, "response_type": XSS},
        {**README, "client_id": XSS},
        {**README, "redirect_uri": XSS},
        {**README, XSS: XSS},
        {**README, "nonce": XSS, "prompt": XSS, "login_hint": XSS},
    ],
)
def test_no_echoed_value_becomes_markup(http: testing.TestClient, query: dict[str, str]) -> None:
    result = http.simulate_get("/authorize", params=query)
    assert "<svg onload" not in result.text and "<script" not in result.text
    assert XSS not in result.headers.get("Location", "")
    assert "<" not in result.headers.get("Location", "")


def test_duplicated_hostile_parameter_names_are_escaped_in_the_error_page(http: testing.TestClient) -> None:
    name = "<script>alert(1)</script>"
    result = http.simulate_get("/authorize", query_string=urlencode([(name, "1"), (name, "2")]))
    assert_error_page(result)
    assert "<script" not in result.text


def test_the_username_echoed_after_a_failed_login_is_escaped(http: testing.TestClient) -> None:
    page = open_page(http, README)
    result = submit(http, page, username=XSS, password="wrong")
    assert result.status_code == 400
    assert "<svg onload" not in result.text and "<script" not in result.text
    assert parse_page(result.text).inputs  # still the form
    assert_frame_proof(result)


# --- clickjacking headers on every kind of response -----------------------------------------------------


def test_every_response_of_the_endpoint_is_frame_proof(http: testing.TestClient, make_app: Any) -> None:
    page = open_page(http, README)
    assert_frame_proof(page.result)  # the login page
    assert_frame_proof(open_page(http, {**README, "client_id": "nobody"}).result)  # error page
    assert_frame_proof(submit(http, page, cookie=None))  # CSRF failure
    assert_frame_proof(submit(http, page, password="wrong"))  # failed login
    assert_frame_proof(submit(http, page))  # the 303 with the code
    locked = make_app(max_failures=1)
    page = open_page(locked, README)
    submit(locked, page, password="wrong")
    throttled = submit(locked, page)
    assert throttled.status_code == 429
    assert_frame_proof(throttled)


# --- CSRF ------------------------------------------------------------------------------------------------


def _assert_refused_without_state_change(result: testing.Result, before: Any, after: Any) -> None:
    assert result.status_code == 400, result.text
    assert "Location" not in result.headers
    assert after == before  # no code, and no failed-login count either


@pytest.mark.parametrize(
    "tamper",
    [
        {"cookie": None},  # a cross-site POST: SameSite keeps the cookie home
        {"cookie": "jwtauth-csrf=" + "B" * 43},  # the attacker's own browser secret
        {"cookie": "jwtauth-csrf=short"},
        {"changes": {"csrf_token": None}},
        {"changes": {"csrf_token": ""}},
        {"changes": {"csrf_token": "9999999999." + "A" * 43}},  # forged far-future expiry
        {"changes": {"csrf_token": "1." + "A" * 43}},
        {"changes": {"csrf_token": "-1.x"}},
    ],
    ids=["no-cookie", "attacker-cookie", "bad-cookie", "no-token", "empty-token", "forged", "old", "garbage"],
)
def test_forged_csrf_is_refused_before_any_login(
    http: testing.TestClient, state: Any, tamper: dict[str, Any]
) -> None:
    page = open_page(http, README)
    before = state()
    result = submit(http, page, **tamper)
    _assert_refused_without_state_change(result, before, state())


def test_login_csrf_with_the_attackers_own_form_fails(http: testing.TestClient, state: Any) -> None:
    """The attacker loads the page in their browser and makes the victim's browser post it."""
    attacker = open_page(http, README)
    victim = open_page(http, README)
    before = state()
    forged = Page(attacker.result, attacker.fields, victim.cookie)
    _assert_refused_without_state_change(submit(http, forged), before, state())


def test_an_expired_csrf_token_is_refused(http: testing.TestClient, clock: Clock, state: Any) -> None:
    page = open_page(http, README)
    clock.now += 601
    before = state()
    _assert_refused_without_state_change(submit(http, page), before, state())


def test_a_csrf_token_cannot_be_moved_to_another_request(http: testing.TestClient, state: Any) -> None:
    first = open_page(http, {**README, "scope": "read"})
    second = open_page(http, {**README, "scope": "read write"}, cookie=first.cookie)
    before = state()
    result = submit(http, second, changes={"csrf_token": first.fields["csrf_token"]})
    _assert_refused_without_state_change(result, before, state())


# --- parameters tampered between the page and the POST -----------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"response_type": "token"},
        {"client_id": "other"},
        {"client_id": MULTI[0], "redirect_uri": MULTI_URIS[0]},
        {"scope": "read write"},
        {"scope": None},
        {"state": "forged"},
        {"state": None},
        {"code_challenge": None, "code_challenge_method": None},  # PKCE stripped (downgrade)
        {"code_challenge": pkce_pair()[1]},  # the attacker's own challenge
        {"resource": "https://reports.example.com"},
        {"resource": None},
    ],
)
def test_tampered_parameters_are_refused(
    http: testing.TestClient, state: Any, changes: dict[str, str | None]
) -> None:
    _, challenge = pkce_pair()
    query = {
        **README,
        "scope": "read",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": "https://api.example.com",
    }
    page = open_page(http, query)
    assert page.result.status_code == 200
    before = state()
    result = submit(http, page, changes=changes)
    assert result.status_code in (400, 303), result.text
    location = result.headers.get("Location", "")
    assert "code=" not in location  # either the form again, or an error redirect: never a code
    assert codes_in(state()) == codes_in(before)


def test_unknown_extra_parameters_are_ignored_not_trusted(http: testing.TestClient) -> None:
    page = open_page(http, {**README, "display": "page", "ui_locales": "fr"})
    result = submit(http, page, changes={"display": "popup", "redirect_uri2": "https://evil.example"})
    assert result.status_code == 303
    assert result.headers["Location"].startswith("https://www.example.com/?code=")


def test_a_query_string_on_the_post_changes_nothing(http: testing.TestClient) -> None:
    page = open_page(http, README)
    fields = {**page.fields, "username": USER, "password": PASSWORD, "decision": "allow"}
    headers = {**FORM, "Cookie": page.cookie or ""}
    result = http.simulate_post(
        "/authorize",
        body=urlencode(fields),
        headers=headers,
        query_string="redirect_uri=https://evil.example&response_type=token&client_id=other",
    )
    assert result.status_code == 303
    assert result.headers["Location"].startswith("https://www.example.com/?code=")


# --- login-failure enumeration ------------------------------------------------------------------------


def _without_csrf(text: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', "", text)


def test_unknown_user_and_wrong_password_render_the_same_page(http: testing.TestClient) -> None:
    page = open_page(http, README)
    unknown = submit(http, page, username="nobody@example.com", password="whatever1")
    wrong = submit(http, page, username="nobody@example.com", password="whatever2")
    known = submit(http, page, username=USER, password="whatever1")
    assert unknown.status_code == wrong.status_code == known.status_code == 400
    assert _without_csrf(unknown.text) == _without_csrf(wrong.text)
    assert _without_csrf(known.text).replace(USER, "nobody@example.com") == _without_csrf(unknown.text)


def test_a_locked_account_looks_like_a_locked_address(make_app: Any) -> None:
    http = make_app(max_failures=2)
    page = open_page(http, README)
    for _ in range(2):
        submit(http, page, username="nobody@example.com", password="x", remote_addr="10.0.0.1")
    unknown = submit(http, page, username="nobody@example.com", password="x", remote_addr="10.0.0.2")
    for _ in range(2):
        submit(http, page, username=USER, password="x", remote_addr="10.0.0.3")
    known = submit(http, page, username=USER, password=PASSWORD, remote_addr="10.0.0.4")
    assert unknown.status_code == known.status_code == 429
    assert unknown.headers["Retry-After"] == known.headers["Retry-After"]


# --- where the code and the token travel ---------------------------------------------------------------


def test_the_code_travels_in_the_query_by_default_with_303(http: testing.TestClient) -> None:
    result = submit(http, open_page(http, README))
    assert result.status_code == 303  # never 307/308, which would re-post the password
    parts = urlsplit(result.headers["Location"])
    assert "code=" in parts.query and parts.fragment == ""


def test_a_token_never_travels_in_the_query_whatever_response_mode_says(http: testing.TestClient) -> None:
    # Multiple Response Types §2.1: query MUST NOT carry tokens; the error goes the safe way.
    for response_type in ("token", "id_token token", "code id_token"):
        query = {
            **README,
            "response_type": response_type,
            "response_mode": "query",
            "scope": "openid",
            "nonce": "n",
        }
        result = http.simulate_get("/authorize", params=query)
        parts = urlsplit(result.headers["Location"])
        assert parts.query == "" and dict(parse_qsl(parts.fragment))["error"] == "invalid_request"


def test_the_implicit_token_travels_in_the_fragment_only(http: testing.TestClient) -> None:
    query = {
        "response_type": "token",
        "client_id": MULTI[0],
        "redirect_uri": MULTI_URIS[0],
    }
    result = submit(http, open_page(http, query))
    assert result.status_code == 303
    parts = urlsplit(result.headers["Location"])
    assert parts.query == "tenant=1"  # the registered query, and nothing else
    fragment = dict(parse_qsl(parts.fragment))
    assert fragment["token_type"] == "Bearer" and "access_token" in fragment
    assert "refresh_token" not in fragment  # RFC 6749 §4.2.2: never with implicit
    assert fragment["iss"] == ISSUER


def test_implicit_errors_travel_in_the_fragment_too(http: testing.TestClient) -> None:
    result = http.simulate_get("/authorize", params={**README, "response_type": "token", "scope": "admin"})
    parts = urlsplit(result.headers["Location"])
    assert parts.query == "" and "error=invalid_scope" in parts.fragment


def test_deny_carries_no_credentials(http: testing.TestClient) -> None:
    result = submit(http, open_page(http, {**README, "state": "s"}), decision="deny")
    assert result.status_code == 303
    params = redirect_params(result.headers["Location"])
    assert params == {
        "error": "access_denied",
        "error_description": "the user denied the request",
        "state": "s",
        "iss": ISSUER,
    }


def test_the_spa_gets_its_code_only_at_its_own_uri(http: testing.TestClient) -> None:
    _, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": SPA,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    result = submit(http, open_page(http, query))
    assert result.headers["Location"].startswith(SPA_URI + "?code=")


# --- redirect URIs the configuration must refuse (RFC 9700 §4.1, RFC 8252 §7.1, RFC 9110 §4.2.4) ------

HASH = hash_secret("s3cret", log_n=10)


def _client_with(uri: str) -> dict[str, Any]:
    return {
        "clients": [
            {"id": "app", "secret_hash": HASH, "grant_types": ["authorization_code"], "redirect_uris": [uri]}
        ]
    }


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JavaScript://example.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "blob:https://example.com/uuid",
        "about:blank",
        "filesystem:https://example.com/x",
        "myapp:/cb",  # private-use schemes are reverse domain names (RFC 8252 §7.1)
        "https://user:pass@app.example.com/cb",
        "https://evil.example@app.example.com/cb",
        "https://app.example.com/cb\r\nSet-Cookie: a=b",
        "https://app.example.com/c b",
        "https://app.example.com/cb\t",
    ],
)
def test_the_configuration_refuses_dangerous_redirect_uris(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(_client_with(uri), "test.toml", {})
    assert "clients[0].redirect_uris" in str(info.value)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb",
        "https://app.example.com/cb?tenant=1",
        "http://127.0.0.1:9000/cb",
        "http://[::1]:9000/cb",
        "http://localhost/cb",
        "com.example.app:/oauth2redirect",
        "com.example.app://cb",
    ],
)
def test_the_configuration_keeps_legitimate_redirect_uris(uri: str) -> None:
    assert parse_settings(_client_with(uri), "test.toml", {}).clients[0].redirect_uris == (uri,)


# --- known redirect-URI vulnerabilities of other authorization servers ----------------------------

LOOPBACK = "http://localhost/cb"
KNOWN_REDIRECT_CVES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "CVE-2026-3872": (
        "Keycloak: ..;/ path traversal past the registered path",
        "testclient",
        (
            "https://www.example.com/..;/evil.example",
            "https://www.example.com/..;/",
            "https://www.example.com/;/../x",
        ),
    ),
    "CVE-2026-7504": (
        "Keycloak: several @ in the user-info hide the real host",
        "testclient",
        (
            "https://www.example.com@@evil.example",
            "https://a@b@www.example.com",
            "https://www.example.com:x@y@evil.example",
        ),
    ),
    "CVE-2024-8883": (
        "Keycloak: a registered localhost URI matched other hosts and ports",
        "loopback",
        (
            "http://localhost.evil.example/cb",
            "http://localhost@evil.example/cb",
            "http://localhost:80@evil.example/cb",
        ),
    ),
    "CVE-2023-6927": (
        "Keycloak: open redirect through response_mode=form_post.jwt",
        "testclient",
        ("https://evil.example",),
    ),
}


@pytest.mark.parametrize("cve", sorted(KNOWN_REDIRECT_CVES))
def test_known_redirect_uri_cves_do_not_apply(make_app: Any, sec_settings: Any, cve: str) -> None:
    _, client_id, uris = KNOWN_REDIRECT_CVES[cve]
    loopback = dataclasses.replace(sec_settings.clients[1], client_id="loopback", redirect_uris=(LOOPBACK,))
    http = make_app(clients=(*sec_settings.clients, loopback))
    for uri in uris:
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": uri, "state": "s"}
        if cve == "CVE-2023-6927":
            query["response_mode"] = "form_post.jwt"
        assert_error_page(open_page(http, query).result)


def test_parameter_pollution_cannot_smuggle_a_second_code_or_issuer(http: testing.TestClient) -> None:
    """CVE-2026-18217 (Keycloak, SAML): attacker parameters placed before the server's own."""
    state = "x&code=attacker-code&iss=https://evil.example&state=y"
    result = submit(http, open_page(http, {**README, "state": state}))
    pairs = parse_qsl(urlsplit(result.headers["Location"]).query, keep_blank_values=True)
    assert [name for name, _ in pairs] == ["code", "state", "iss"]  # one of each, ours
    assert dict(pairs)["state"] == state and dict(pairs)["iss"] == ISSUER
