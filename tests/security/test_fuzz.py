"""Property-based fuzzing of every endpoint (hypothesis): arbitrary forms, headers, query strings,
methods and paths. Whatever arrives: never a 500, always a well-formed protocol answer, and a
rejected request changes no state (a snapshot of the fakeredis keys before and after).

Failed sign-ins do write one thing on purpose: the brute-force counters (RFC 6749 §4.3.2), which
are left out of the comparison. Live codes and refresh tokens are kept out of the inputs, because
presenting one twice is *meant* to revoke (RFC 6749 §4.1.2, RFC 9700 §4.14.2)."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import fakeredis
import pytest
from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jwtauth.accounts.hashing import SecretChecker
from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import load_settings
from jwtauth.keys import KeyRing
from tests.helpers import (
    FIXTURES,
    ISSUER,
    OAUTH_ERRORS,
    Clock,
    basic_header,
    login,
    snapshot,
    suite_settings,
    tokens_of,
)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # reproducible in CI
    database=None,  # no .hypothesis/ folder in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

OAUTH_PATHS = ["/api/v1/tokens", "/api/v1/revoke", "/api/v1/introspect"]
PAGE_PATHS = ["/authorize"]
GET_PATHS = [
    "/jwks",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/healthz",
    "/readyz",
]
ALL_PATHS = [p + s for p in OAUTH_PATHS + PAGE_PATHS + GET_PATHS for s in ("", "/")]
NAMES = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "resource",
    "code",
    "redirect_uri",
    "code_verifier",
    "code_challenge",
    "code_challenge_method",
    "refresh_token",
    "username",
    "password",
    "token",
    "token_type_hint",
    "response_type",
    "state",
    "csrf_token",
    "decision",
    "response_mode",
]
# Values that reach deep into the handlers (real ids, grants, URIs) but are never live tokens.
VALUES = [
    "client_credentials",
    "password",
    "refresh_token",
    "authorization_code",
    "implicit",
    "code",
    "token",
    "testclient",
    "other",
    "spa",
    "multi",
    "testpassword",
    "othersecret",
    "testuser@example.com",
    "read",
    "read write",
    "admin",
    "https://www.example.com",
    "https://spa.example.com/cb",
    "https://app.example.com/cb?tenant=1",
    "https://api.example.com",
    "https://evil.example",
    "S256",
    "plain",
    "allow",
    "deny",
    "A" * 43,
    "A" * 22 + "." + "A" * 43,
    "a.b.c",
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    "",
    "\x00",
    "%",
    "%ff",
    "&",
    "=",
    "+",
    " ",
    "\u00e9",
    "\ufffd",
    "x" * 2000,
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/json",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
    "application/x-www-form-urlencoded;;",
]
AUTHORIZATIONS = [
    basic_header("testclient", "testpassword"),
    basic_header("other", "othersecret"),
    basic_header("testclient", "wrong"),
    basic_header("nobody", "x"),
    "Basic",
    "Basic !!!",
    "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    "Bearer a.b.c",
    "Digest x",
    "Basic " + "A" * 3000,
]
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
ANY_TEXT = st.text(max_size=80)
VALUE = st.one_of(st.sampled_from(VALUES), ANY_TEXT)
NAME = st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES).map(str.upper), ANY_TEXT)
PAIRS = st.lists(st.tuples(NAME, VALUE), max_size=12)


@dataclass
class Fuzzed:
    http: testing.TestClient
    store: Any
    redirect_uris: tuple[str, ...]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Fuzzed:
    """One app for the module, with one live grant so its family id can be guessed at."""
    directory = tmp_path_factory.mktemp("fuzz-keys")
    keyfolder.ensure(directory, "ES256", now=time.time(), retire_after=960)
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    config = suite_settings(dataclasses.replace(load_settings(FIXTURES, env={}), issuer=ISSUER))
    app = create_app(
        config,
        KeyRing(directory, retire_after=960),
        store,
        clock=Clock(),
        checker=SecretChecker(dummy_log_n=10),
    )
    http = testing.TestClient(app)
    _, refresh = tokens_of(login(http))
    VALUES.append(refresh.split(".")[0] + "." + "B" * 43)  # a guessed secret for a real family
    uris = tuple(u for c in config.clients for u in c.redirect_uris)
    return Fuzzed(http, store, uris)


def _state(store: Any) -> dict[bytes, Any]:
    """The store without the brute-force counters, which failures are meant to write."""
    return {k: v for k, v in snapshot(store).items() if b"{l:" not in k}


def _encode(pairs: list[tuple[str, str]], raw: bool) -> bytes:
    if raw:  # unencoded: '&', '=', '%' and non-ASCII go out as they are
        return "&".join(f"{n}={v}" for n, v in pairs).encode("utf-8", "surrogatepass")
    return urlencode(pairs, quote_via=quote).encode("ascii")


def check(
    fuzzed: Fuzzed, method: str, path: str, result: testing.Result, before: Mapping[bytes, Any]
) -> None:
    """Assert the properties every answer must have."""
    status = result.status_code
    assert status < 500, (method, path, status, result.text[:300])
    headers = result.headers
    base = path.rstrip("/") or "/"
    if status in (200, 304) and method in ("GET", "HEAD") and base in GET_PATHS:
        return
    if method == "OPTIONS" and status == 200:
        return
    if base == "/authorize" and method in ("GET", "POST") and status != 405:
        assert headers.get("X-Frame-Options") == "DENY"
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", "")
        assert headers.get("Cache-Control") == "no-store"
        if status == 303:
            location = headers["Location"]
            assert any(location.startswith(_bare(u)) for u in fuzzed.redirect_uris), location
            assert "\r" not in location and "\n" not in location
        else:
            assert status in (200, 400, 413, 415, 429), (status, result.text[:300])
            assert headers["Content-Type"].startswith("text/html")
            assert "<script" not in result.text
        if status != 303 or "error=" in headers.get("Location", ""):
            assert _state(fuzzed.store) == before
        return
    if status == 200 and base in ("/api/v1/tokens", "/api/v1/introspect", "/api/v1/revoke"):
        assert headers.get("Cache-Control") == "no-store"
        return
    # Everything else is an error in the RFC 6749 §5.2 shape.
    assert 400 <= status < 500, (status, result.text[:300])
    assert headers.get("Cache-Control") == "no-store", (method, path, status, headers)
    if method != "HEAD":
        body = json.loads(result.text)
        assert set(body) <= {"error", "error_description"} and body["error"] in OAUTH_ERRORS, body
        assert "Traceback" not in result.text
    if status == 401:
        assert headers.get("WWW-Authenticate", "").startswith("Basic")
    assert _state(fuzzed.store) == before, (method, path, status, result.text[:300])


def _bare(uri: str) -> str:
    parts = urlsplit(uri)
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}{path}"


@FUZZ
@given(
    path=st.sampled_from(OAUTH_PATHS + [p + "/" for p in OAUTH_PATHS]),
    pairs=PAIRS,
    raw=st.booleans(),
    content_type=st.sampled_from(CONTENT_TYPES),
    authorization=st.one_of(
        st.none(), st.sampled_from(AUTHORIZATIONS), PRINTABLE.map(lambda t: "Basic " + t)
    ),
)
def test_oauth_endpoints_answer_any_form_with_a_protocol_error(
    fuzzed: Fuzzed,
    path: str,
    pairs: list[tuple[str, str]],
    raw: bool,
    content_type: str,
    authorization: str | None,
) -> None:
    before = _state(fuzzed.store)
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    result = fuzzed.http.simulate_post(path, body=_encode(pairs, raw), headers=headers)
    check(fuzzed, "POST", path, result, before)


@FUZZ
@given(
    grant_type=st.sampled_from(["client_credentials", "password", "refresh_token", "authorization_code"]),
    pairs=PAIRS,
    authorization=st.sampled_from(AUTHORIZATIONS[:3]),
)
def test_each_grant_answers_any_parameters_with_a_protocol_error(
    fuzzed: Fuzzed, grant_type: str, pairs: list[tuple[str, str]], authorization: str
) -> None:
    """Past the grant lookup and client authentication, into every grant's own checks."""
    before = _state(fuzzed.store)
    body = _encode([("grant_type", grant_type), *[p for p in pairs if p[0] != "grant_type"]], raw=False)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": authorization}
    result = fuzzed.http.simulate_post("/api/v1/tokens", body=body, headers=headers)
    check(fuzzed, "POST", "/api/v1/tokens", result, before)
    if result.status_code == 200:
        assert result.json["token_type"] == "Bearer"


@FUZZ
@given(
    query=PAIRS, raw=st.booleans(), cookie=st.one_of(st.none(), PRINTABLE.map(lambda t: "jwtauth-csrf=" + t))
)
def test_the_authorize_page_answers_any_query_safely(
    fuzzed: Fuzzed, query: list[tuple[str, str]], raw: bool, cookie: str | None
) -> None:
    before = _state(fuzzed.store)
    base = [("response_type", "code"), ("client_id", "testclient")]
    query_string = _encode(base + query, raw).decode("utf-8", "surrogatepass")
    headers = {"Cookie": cookie} if cookie else {}
    result = fuzzed.http.simulate_get("/authorize", query_string=query_string, headers=headers)
    check(fuzzed, "GET", "/authorize", result, before)


@FUZZ
@given(form=PAIRS, raw=st.booleans(), content_type=st.sampled_from(CONTENT_TYPES))
def test_the_authorize_post_answers_any_form_safely(
    fuzzed: Fuzzed, form: list[tuple[str, str]], raw: bool, content_type: str
) -> None:
    before = _state(fuzzed.store)
    base = [("response_type", "code"), ("client_id", "testclient"), ("decision", "allow")]
    result = fuzzed.http.simulate_post(
        "/authorize", body=_encode(base + form, raw), headers={"Content-Type": content_type}
    )
    check(fuzzed, "POST", "/authorize", result, before)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=st.one_of(st.sampled_from(ALL_PATHS), PRINTABLE.map(lambda t: "/" + quote(t))),
    query=PRINTABLE,
    extra=st.dictionaries(
        st.sampled_from(
            ["X-Forwarded-For", "If-None-Match", "Accept", "Cookie", "Origin", "Range", "Content-Type"]
        ),
        PRINTABLE,
        max_size=4,
    ),
)
def test_any_method_path_and_headers_get_a_well_formed_answer(
    fuzzed: Fuzzed, method: str, path: str, query: str, extra: dict[str, str]
) -> None:
    before = _state(fuzzed.store)
    result = fuzzed.http.simulate_request(method, path, query_string=quote(query, safe="=&"), headers=extra)
    check(fuzzed, method, path, result, before)
