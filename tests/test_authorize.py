"""HTTP tests of /authorize: the page, validation order, CSRF, login limits, code and implicit."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import redis
from falcon import testing
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwtauth.app import create_app
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.oauth import pkce
from jwtauth.store import CodeStore, FailureLimiter
from tests.authflow import authorize, code_from, open_page, parse_page, redirect_params, submit
from tests.helpers import ISSUER, PASSWORD, PEPPER, README_QUERY, USER, Clock, MakeApp, client_like
from tests.support import free_port

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = pkce.s256(VERIFIER)
# Referrer-Policy: no-referrer, or same-origin on a form page (its POST carries its Origin, issue 18).
NO_CROSS_ORIGIN_REFERER = ("no-referrer", "same-origin")
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}

MakeClient = Callable[..., testing.TestClient]


@pytest.fixture
def make_client(make_app: MakeApp) -> MakeClient:
    """Return a factory of TestClients with extra clients or other settings (real time unless clock=)."""

    def make(*clients: Any, clock: Callable[[], float] | None = None, **changes: Any) -> testing.TestClient:
        return make_app(clients=clients, clock=clock, **changes)

    return make


def assert_page_headers(result: testing.Result) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert result.headers[name] == value, name
    assert result.headers["Referrer-Policy"] in NO_CROSS_ORIGIN_REFERER
    policy = result.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy  # so no script at all
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def assert_error_page(result: testing.Result, status: int = 400) -> None:
    assert result.status_code == status
    assert "Location" not in result.headers
    assert result.headers["Content-Type"].startswith("text/html")
    assert_page_headers(result)
    assert "This sign-in link does not work" in result.text


# --- the page ---------------------------------------------------------------------------------


def test_readme_url_shows_the_login_and_consent_form(client: testing.TestClient) -> None:
    page = open_page(client, README_QUERY, path="/authorize/")
    result = page.result
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "text/html; charset=utf-8"
    assert_page_headers(result)
    form = parse_page(result.text)
    named = {str(i.get("name")): i for i in form.inputs}
    assert named["username"]["type"] == "text" and named["password"]["type"] == "password"
    assert [(b["name"], b["value"]) for b in form.buttons] == [("decision", "allow"), ("decision", "deny")]
    assert set(page.fields) == {*README_QUERY, "csrf_token"}
    assert '<label for="username">' in result.text and '<label for="password">' in result.text
    assert "Test Client" in result.text
    assert "Read your data" in result.text and "Create and change your data" in result.text
    assert "www.example.com" in result.text and "<script" not in result.text


def test_inline_stylesheet_is_allowed_by_its_hash_and_nothing_else(client: testing.TestClient) -> None:
    result = open_page(client, README_QUERY).result
    css = re.search(r"<style>(.*?)</style>", result.text, re.S)
    assert css is not None and "style=" not in result.text
    digest = base64.b64encode(hashlib.sha256(css[1].encode()).digest()).decode()
    policy = result.headers["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}';" in policy
    # The POST may go to this server, and its 303 to the client's redirect URI only.
    assert "form-action 'self' https://www.example.com;" in policy
    assert "base-uri 'none'" in policy


def test_csrf_cookie_is_http_only_same_site_and_short_lived(client: testing.TestClient) -> None:
    result = open_page(client, README_QUERY).result
    cookie = result.cookies["jwtauth-csrf"]
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/"
    assert cookie.max_age is not None and 0 < cookie.max_age <= 600
    assert not cookie.secure  # the test issuer is http


def test_https_issuer_gets_a_secure_host_prefixed_cookie(make_client: MakeClient) -> None:
    client = make_client(issuer="https://auth.example.com")
    result = open_page(client, README_QUERY).result
    cookie = result.cookies["__Host-jwtauth-csrf"]
    assert cookie.secure and cookie.path == "/" and cookie.domain is None


def test_a_second_tab_keeps_the_browser_secret(client: testing.TestClient) -> None:
    first = open_page(client, README_QUERY)
    second = open_page(client, {**README_QUERY, "state": "other"}, cookie=first.cookie)
    assert second.cookie == first.cookie
    assert submit(client, first).status_code == 303  # the first tab still works


def test_request_values_are_escaped_everywhere(make_client: MakeClient, settings: Settings) -> None:
    evil = '"><script>alert(1)</script>'
    client = make_client(client_like(settings, "evil", name=evil))
    page = open_page(client, {**README_QUERY, "client_id": "evil", "state": evil})
    assert page.result.status_code == 200
    assert "<script>" not in page.result.text
    assert "&#34;&gt;&lt;script&gt;" in page.result.text
    assert page.fields["state"] == evil  # the browser gets the exact value back
    again = submit(client, page, password="wrong", username=evil)
    assert "<script>" not in again.text


# --- errors that must never redirect ----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {**README_QUERY, "client_id": "nosuchclient"},
        {k: v for k, v in README_QUERY.items() if k != "client_id"},
        {**README_QUERY, "redirect_uri": "https://evil.example.net"},
        {**README_QUERY, "redirect_uri": "https://www.example.com//"},  # only an empty path is "/"
        {**README_QUERY, "redirect_uri": "https://WWW.example.com"},
        {**README_QUERY, "redirect_uri": "http://www.example.com"},
        {**README_QUERY, "redirect_uri": "https://www.example.com?x=1"},
        {**README_QUERY, "redirect_uri": "https://www.example.com.evil.net"},
        "response_type=code&client_id=testclient&client_id=testclient",  # RFC 6749 §3.1
    ],
    ids=["unknown", "missing", "foreign", "slash", "case", "http", "query", "suffix", "repeated"],
)
def test_unknown_client_or_unregistered_redirect_is_an_error_page(
    client: testing.TestClient, query: dict[str, str] | str
) -> None:
    result = open_page(client, query).result
    assert_error_page(result)
    assert "evil" not in result.headers.get("Location", "")


def test_omitted_redirect_uri_is_ambiguous_with_two_registered(
    make_client: MakeClient, settings: Settings
) -> None:
    two = client_like(settings, "two", redirect_uris=("https://a.example.com/cb", "https://b.example.com/cb"))
    client = make_client(two)
    query = {"response_type": "code", "client_id": "two", "state": "s"}
    assert_error_page(open_page(client, query).result)
    ok = open_page(client, {**query, "redirect_uri": "https://b.example.com/cb"})
    assert ok.result.status_code == 200


def test_post_revalidates_client_and_redirect_uri(client: testing.TestClient) -> None:
    page = open_page(client, README_QUERY)
    assert_error_page(submit(client, page, changes={"redirect_uri": "https://evil.example.net"}))
    assert_error_page(submit(client, page, changes={"client_id": "nosuchclient"}))
    assert_error_page(submit(client, page, changes={"client_id": None}))


def test_post_that_is_not_a_form_is_an_error_page(client: testing.TestClient) -> None:
    result = client.simulate_post("/authorize", json={"client_id": "testclient"})
    assert_error_page(result, 415)


# --- errors redirected to the client (RFC 6749 §4.1.2.1) ---------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "none"}, "unsupported_response_type"),
        ({"response_type": "code code"}, "unsupported_response_type"),
        ({"scope": "read admin"}, "invalid_scope"),
        ({"resource": "https://elsewhere.example.com"}, "invalid_target"),
        ({"code_challenge": CHALLENGE, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": CHALLENGE}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
    ],
)
def test_invalid_requests_redirect_with_error_state_and_iss(
    client: testing.TestClient, changes: dict[str, str | None], error: str
) -> None:
    query = {k: v for k, v in {**README_QUERY, **changes}.items() if v is not None}
    result = open_page(client, query).result
    assert result.status_code == 303
    assert_page_headers(result)
    location = result.headers["Location"]
    assert location.startswith("https://www.example.com/?")
    params = redirect_params(location)
    assert params["error"] == error
    assert params["state"] == "somestate" and params["iss"] == ISSUER
    assert "code" not in params


def test_error_redirect_without_state_has_no_state(client: testing.TestClient) -> None:
    query = {k: v for k, v in README_QUERY.items() if k != "state"}
    params = redirect_params(open_page(client, {**query, "response_type": "x"}).result.headers["Location"])
    assert set(params) == {"error", "error_description", "iss"}


@pytest.mark.parametrize(("response_type", "grant"), [("code", "authorization_code"), ("token", "implicit")])
def test_response_type_needs_the_matching_grant(
    make_client: MakeClient, settings: Settings, response_type: str, grant: str
) -> None:
    others = frozenset(settings.clients[0].grant_types - {grant})
    client = make_client(client_like(settings, "limited", grant_types=others))
    result = open_page(client, {**README_QUERY, "client_id": "limited", "response_type": response_type})
    location = result.result.headers["Location"]
    params = redirect_params(location, fragment=response_type == "token")
    assert params["error"] == "unauthorized_client" and params["state"] == "somestate"


def test_implicit_errors_travel_in_the_fragment(client: testing.TestClient) -> None:
    result = open_page(client, {**README_QUERY, "response_type": "token", "scope": "admin"}).result
    parts = urlsplit(result.headers["Location"])
    assert parts.query == ""
    assert redirect_params(result.headers["Location"], fragment=True)["error"] == "invalid_scope"


def test_public_client_must_send_a_pkce_challenge(make_client: MakeClient, settings: Settings) -> None:
    client = make_client(client_like(settings, "spa", public=True))
    query = {**README_QUERY, "client_id": "spa"}
    params = redirect_params(open_page(client, query).result.headers["Location"])
    assert params["error"] == "invalid_request" and "code_challenge" in params["error_description"]
    with_pkce = {**query, "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    assert open_page(client, with_pkce).result.status_code == 200


def test_deny_redirects_access_denied_without_credentials(client: testing.TestClient) -> None:
    page = open_page(client, README_QUERY)
    result = submit(client, page, decision="deny", username=None, password=None)
    assert result.status_code == 303
    params = redirect_params(result.headers["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == "somestate" and params["iss"] == ISSUER


@pytest.mark.parametrize("decision", [None, "maybe"])
def test_missing_or_unknown_decision_is_invalid_request(
    client: testing.TestClient, decision: str | None
) -> None:
    page = open_page(client, README_QUERY)
    result = submit(client, page, decision=decision)
    assert redirect_params(result.headers["Location"])["error"] == "invalid_request"


def test_store_outage_redirects_temporarily_unavailable(settings: Settings, keyring: KeyRing) -> None:
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = testing.TestClient(create_app(settings, keyring, down))
    page = open_page(client, README_QUERY)  # the page itself needs no store
    assert page.result.status_code == 200
    result = submit(client, page)
    assert result.status_code == 303
    assert redirect_params(result.headers["Location"])["error"] == "temporarily_unavailable"


# --- the code response --------------------------------------------------------------------------


def test_allow_redirects_with_code_state_and_iss_like_the_old_readme(client: testing.TestClient) -> None:
    result = authorize(client, README_QUERY)
    assert result.status_code == 303
    assert_page_headers(result)
    location = result.headers["Location"]
    assert re.fullmatch(
        r"https://www\.example\.com/\?code=[A-Za-z0-9_-]{43}&state=somestate&iss=\S+", location
    )
    assert redirect_params(location)["iss"] == ISSUER


def test_redis_keeps_only_the_hash_of_the_code_with_a_short_ttl(
    client: testing.TestClient, store: Any
) -> None:
    query = {**README_QUERY, "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    code = code_from(authorize(client, query))
    digest = hashlib.sha256(code.encode()).hexdigest()
    keys = [k.decode() for k in store.keys("*")]
    assert [k for k in keys if digest in k]
    for key in keys:
        assert code not in key
        assert 0 < store.pttl(key) <= 60_000 or digest not in key
        if store.type(key) == b"hash":
            assert all(code.encode() not in v for v in store.hgetall(key).values())


def test_code_record_carries_what_the_token_request_needs(
    client: testing.TestClient, store: Any, settings: Settings
) -> None:
    query = {
        **README_QUERY,
        "scope": "read",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "resource": "https://reports.example.com",
    }
    code = code_from(authorize(client, query))
    codes = CodeStore(store, pepper=PEPPER, prefix=settings.redis_prefix)
    taken = codes.take(code, client_id="testclient", now=0)
    record = taken.record
    assert record is not None
    assert (record.subject, record.scope, record.redirect_uri) == (USER, "read", "https://www.example.com")
    assert (record.code_challenge, record.code_challenge_method) == (CHALLENGE, "S256")
    assert record.audience == ("https://reports.example.com",)
    assert record.auth_time > 0


def test_omitted_redirect_uri_is_stored_as_omitted(
    client: testing.TestClient, store: Any, settings: Settings
) -> None:
    query = {k: v for k, v in README_QUERY.items() if k != "redirect_uri"}
    code = code_from(authorize(client, query))
    codes = CodeStore(store, pepper=PEPPER, prefix=settings.redis_prefix)
    taken = codes.take(code, client_id="testclient", now=0)
    assert taken.record is not None and taken.record.redirect_uri is None


def test_registered_query_is_kept(make_client: MakeClient, settings: Settings) -> None:
    uri = "https://app.example.com/cb?tenant=a%20b"
    client = make_client(client_like(settings, "tenant", redirect_uris=(uri,)))
    result = authorize(client, {**README_QUERY, "client_id": "tenant", "redirect_uri": uri})
    assert result.headers["Location"].startswith(uri + "&code=")
    assert redirect_params(result.headers["Location"])["tenant"] == "a b"


def test_each_allow_issues_a_new_code(client: testing.TestClient) -> None:
    assert code_from(authorize(client, README_QUERY)) != code_from(authorize(client, README_QUERY))


# --- the implicit response (RFC 6749 §4.2.2) ----------------------------------------------------


def test_implicit_puts_the_token_in_the_fragment_only(client: testing.TestClient, keyring: KeyRing) -> None:
    result = authorize(client, {**README_QUERY, "response_type": "token"})
    assert result.status_code == 303
    location = result.headers["Location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path, parts.query) == ("https", "www.example.com", "/", "")
    params = redirect_params(location, fragment=True)
    assert set(params) == {"access_token", "token_type", "expires_in", "expires_at", "scope", "state", "iss"}
    assert params["token_type"] == "Bearer" and params["scope"] == "read write"
    assert params["state"] == "somestate" and params["iss"] == ISSUER and params["expires_in"] == "900"
    key = keyring.published(jwt.get_unverified_header(params["access_token"])["kid"])
    assert key is not None
    public = key.private_key.public_key()
    claims = jwt.decode(
        params["access_token"], public, algorithms=[key.alg], audience="https://api.example.com"
    )
    assert claims["sub"] == USER and claims["client_id"] == "testclient" and "fid" not in claims
    assert "auth_time" in claims


# --- CSRF ---------------------------------------------------------------------------------------


def assert_form_again(result: testing.Result, status: int, words: str) -> None:
    assert result.status_code == status, result.text
    assert "Location" not in result.headers
    assert_page_headers(result)
    assert words in result.text
    assert parse_page(result.text).hidden.get("csrf_token")


@pytest.mark.parametrize(
    "tamper",
    [
        {"cookie": None},
        {"cookie": "jwtauth-csrf=" + "A" * 43},
        {"changes": {"csrf_token": None}},
        {"changes": {"csrf_token": "1.abc"}},
        {"changes": {"scope": "read"}},
        {"changes": {"state": "forged"}},
        {"changes": {"code_challenge": CHALLENGE, "code_challenge_method": "S256"}},
        {"changes": {"redirect_uri": None}},  # omitted means the same URI here, but it is not the request
    ],
    ids=["no-cookie", "other-cookie", "no-token", "bad-token", "scope", "state", "pkce", "redirect"],
)
def test_forged_or_tampered_posts_get_the_form_again(
    client: testing.TestClient, tamper: dict[str, Any]
) -> None:
    page = open_page(client, README_QUERY)
    assert_form_again(submit(client, page, **tamper), 400, "This page expired or was changed")


def test_deny_needs_the_csrf_token_too(client: testing.TestClient) -> None:
    page = open_page(client, README_QUERY)
    assert_form_again(submit(client, page, decision="deny", cookie=None), 400, "expired")


def test_token_from_another_request_does_not_fit(client: testing.TestClient) -> None:
    other = open_page(client, {**README_QUERY, "state": "other"})
    page = open_page(client, README_QUERY, cookie=other.cookie)
    result = submit(client, page, changes={"csrf_token": other.fields["csrf_token"]})
    assert result.status_code == 400 and "Location" not in result.headers


def test_expired_form_is_shown_again_with_a_fresh_token(make_client: MakeClient) -> None:
    clock = Clock()
    client = make_client(clock=clock)
    page = open_page(client, README_QUERY)
    clock.now += 601
    again = submit(client, page)
    assert_form_again(again, 400, "expired")
    fresh = dataclasses.replace(page, fields=parse_page(again.text).hidden)
    assert fresh.fields["csrf_token"] != page.fields["csrf_token"]
    assert submit(client, fresh).status_code == 303


# --- login and brute-force limits ---------------------------------------------------------------


@pytest.mark.parametrize(("username", "password"), [(USER, "wrong"), ("nobody@example.com", PASSWORD)])
def test_wrong_credentials_get_one_generic_message(
    client: testing.TestClient, username: str, password: str
) -> None:
    page = open_page(client, README_QUERY)
    result = submit(client, page, username=username, password=password)
    assert_form_again(result, 400, "The email or password is not correct.")
    assert f'value="{username}"' in result.text and password not in result.text


def test_empty_credentials_are_asked_for_without_counting(make_client: MakeClient) -> None:
    client = make_client(max_failures=1)
    page = open_page(client, README_QUERY)
    assert_form_again(submit(client, page, password=None), 400, "Enter your email")
    assert submit(client, page).status_code == 303  # nothing was counted


def lock_out(client: testing.TestClient, users: list[str], remote_addr: str) -> None:
    page = open_page(client, README_QUERY)
    for user in users:
        result = submit(client, page, username=user, password="wrong", remote_addr=remote_addr)
        assert result.status_code == 400


def test_too_many_failures_lock_the_user_even_with_the_right_password(make_client: MakeClient) -> None:
    client = make_client(max_failures=3)
    lock_out(client, [USER] * 3, "10.0.0.1")
    page = open_page(client, README_QUERY)
    result = submit(client, page, remote_addr="10.0.0.2")  # right password, other address
    assert_form_again(result, 429, "Too many failed sign-in attempts. Try again in 5 minutes.")
    assert 0 < int(result.headers["Retry-After"]) <= 300


def test_too_many_failures_lock_the_address_for_every_user(make_client: MakeClient) -> None:
    client = make_client(max_failures=3)
    lock_out(client, ["a@example.com", "b@example.com", "c@example.com"], "10.0.0.1")
    page = open_page(client, README_QUERY)
    assert submit(client, page, remote_addr="10.0.0.1").status_code == 429
    assert submit(client, page, remote_addr="10.0.0.2").status_code == 303


def test_lockout_ends_with_the_window(make_client: MakeClient) -> None:
    clock = Clock()
    client = make_client(max_failures=2, clock=clock)
    lock_out(client, [USER] * 2, "10.0.0.1")
    page = open_page(client, README_QUERY)
    assert submit(client, page).status_code == 429
    clock.now += 301
    page = open_page(client, README_QUERY)
    assert submit(client, page).status_code == 303


def test_a_successful_login_resets_the_user_counter_only(make_client: MakeClient) -> None:
    client = make_client(max_failures=3)
    lock_out(client, [USER] * 2, "10.0.0.1")
    # A fresh page for each sign-in: a submitted page is spent (issue 18).
    assert submit(client, open_page(client, README_QUERY), remote_addr="10.0.0.1").status_code == 303
    lock_out(client, [USER] * 2, "10.0.0.2")  # 2 more: the user is at 2 of 3, not 4
    assert submit(client, open_page(client, README_QUERY), remote_addr="10.0.0.3").status_code == 303
    # The address counter of 10.0.0.1 was not reset: one more failure there locks it.
    lock_out(client, ["x@example.com"], "10.0.0.1")
    assert submit(client, open_page(client, README_QUERY), remote_addr="10.0.0.1").status_code == 429


def test_login_counters_are_the_ones_the_password_grant_shares(
    client: testing.TestClient, store: Any, settings: Settings
) -> None:
    lock_out(client, [USER], "10.9.8.7")
    limiter = FailureLimiter(
        store, pepper=PEPPER, prefix=settings.redis_prefix, max_failures=1, window_seconds=300
    )
    # With a limit of 1, an attempt is refused exactly when a failure is on record.
    assert limiter.acquire([f"user:{USER}"], now=time.time()) is not None
    assert limiter.acquire(["addr:10.9.8.7"], now=time.time()) is not None
    assert limiter.acquire(["addr:10.9.8.6"], now=time.time()) is None


# --- routing and discovery ------------------------------------------------------------------------


def test_other_methods_are_not_allowed(client: testing.TestClient) -> None:
    assert client.simulate_put("/authorize").status_code == 405


def test_metadata_announces_the_authorization_endpoint(client: testing.TestClient) -> None:
    meta = client.simulate_get("/.well-known/oauth-authorization-server").json
    assert meta["authorization_endpoint"] == ISSUER + "/authorize"
    assert {"code", "token", "id_token", "code id_token token"} <= set(meta["response_types_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert {"authorization_code", "implicit"} <= set(meta["grant_types_supported"])
