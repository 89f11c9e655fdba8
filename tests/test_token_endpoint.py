"""HTTP tests of POST /api/v1/tokens with the client_credentials grant (falcon.testing)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import fakeredis
import jwt
import pytest
import redis
import redis.sentinel
from falcon import testing
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwtauth.accounts.hashing import SecretChecker, hash_secret
from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings, load_settings, parse_settings
from jwtauth.grants.client_credentials import ClientCredentialsGrant
from jwtauth.keys import KeyRing
from jwtauth.resources.forms import MAX_BODY
from tests.helpers import FIXTURES, FORM, ISSUER, PEPPER, basic, write_pepper

TOKENS = "/api/v1/tokens"
GRANT = "grant_type=client_credentials"
BODY_AUTH = GRANT + "&client_id=testclient&client_secret=testpassword"
API = "https://api.example.com"
REPORTS = "https://reports.example.com"
# RFC 6749 §5.2 plus RFC 8707 §2 and the 503 of §4.1.2.1.
OAUTH_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "server_error",
    "temporarily_unavailable",
}
# One checker for every app in this module: the demo secret costs scrypt once, not per app.
CHECKER = SecretChecker()


def make_keys(directory: Path) -> Path:
    keyfolder.ensure(directory, "ES256", now=time.time(), retire_after=960)
    return directory


def build(settings: Settings, keys_dir: Path) -> testing.TestClient:
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app = create_app(settings, KeyRing(keys_dir, retire_after=960), store, checker=CHECKER)
    # Every answer echoes X-Request-ID: one fixed id keeps identical requests' answers identical.
    return testing.TestClient(app, headers={"X-Request-ID": "test-request"})


@pytest.fixture(scope="module")
def module_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def http(module_keys: Path) -> testing.TestClient:
    """The demo fixtures behind one app, shared by the module (the app keeps no state here)."""
    return build(replace(load_settings(FIXTURES, env={}), issuer=ISSUER), module_keys)


def post(
    http: testing.TestClient,
    body: str | bytes = GRANT,
    headers: dict[str, str] | None = None,
    path: str = TOKENS,
    query: str | None = None,
) -> testing.Result:
    return http.simulate_post(
        path, body=body, headers=basic() if headers is None else headers, query_string=query
    )


def verify(http: testing.TestClient, token: str, audience: str = API) -> dict[str, Any]:
    """Verify a token the way a resource server would: with the key from /jwks."""
    jwks = jwt.PyJWKSet.from_dict(http.simulate_get("/jwks").json)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[header["alg"]],
        audience=audience,
        issuer=ISSUER,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]},
    )
    return claims


def assert_oauth_error(result: testing.Result, status: int, error: str) -> dict[str, Any]:
    """Check what every error answer must be: RFC 6749 §5.2 JSON, no-store, the right status."""
    assert result.status_code == status, result.text
    assert result.headers["Content-Type"].startswith("application/json")
    assert result.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = result.json
    assert body["error"] == error and error in OAUTH_ERRORS
    assert set(body) <= {"error", "error_description", "error_uri"}
    # RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
    description = body.get("error_description", "")
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description), description
    if status == 401:
        assert result.headers["WWW-Authenticate"].startswith("Basic ")
    assert "testpassword" not in result.text and "testpassword" not in str(result.headers)
    return body


# --- success --------------------------------------------------------------------------------


def test_old_readme_curl_with_basic(http: testing.TestClient) -> None:
    # curl -u testclient:testpassword localhost:8000/api/v1/tokens/ -d 'grant_type=client_credentials'
    token = base64.b64encode(b"testclient:testpassword").decode()
    result = post(http, GRANT, {**FORM, "Authorization": f"Basic {token}"}, path=TOKENS + "/")
    assert_token_response(http, result)


def test_old_readme_curl_with_body(http: testing.TestClient) -> None:
    # curl localhost:8000/api/v1/tokens/ -d 'grant_type=client_credentials&client_id=…&client_secret=…'
    result = post(http, BODY_AUTH, FORM, path=TOKENS + "/")
    assert_token_response(http, result)


def assert_token_response(http: testing.TestClient, result: testing.Result) -> dict[str, Any]:
    assert result.status_code == 200, result.text
    assert result.headers["Cache-Control"] == "no-store"
    assert result.headers["Pragma"] == "no-cache"
    assert result.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = result.json
    assert set(body) == {"access_token", "token_type", "expires_in", "expires_at", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "read write"
    claims = verify(http, body["access_token"])
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == claims["exp"]
    return claims


def test_token_claims(http: testing.TestClient) -> None:
    before = int(time.time())
    claims = verify(http, post(http).json["access_token"])
    assert claims["iss"] == ISSUER
    assert claims["sub"] == claims["client_id"] == "testclient"
    assert claims["aud"] == API
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 900
    assert claims["scope"] == "read write"
    assert len(claims["jti"]) >= 16
    assert "fid" not in claims and "auth_time" not in claims


def test_kid_matches_the_jwks(http: testing.TestClient) -> None:
    header = jwt.get_unverified_header(post(http).json["access_token"])
    kids = [k["kid"] for k in http.simulate_get("/jwks").json["keys"]]
    assert header["kid"] in kids and header["alg"] == "ES256"


def test_jti_is_unique(http: testing.TestClient) -> None:
    jtis = {verify(http, post(http).json["access_token"])["jti"] for _ in range(20)}
    assert len(jtis) == 20


def test_no_refresh_token_for_client_credentials(http: testing.TestClient) -> None:
    # RFC 6749 §4.4.3: a refresh token SHOULD NOT be included.
    result = post(http)
    assert result.status_code == 200 and "refresh_token" not in result.json


@pytest.mark.parametrize("path", [TOKENS, TOKENS + "/"])
@pytest.mark.parametrize("auth", ["basic", "body"])
def test_both_paths_answer_the_same(http: testing.TestClient, path: str, auth: str) -> None:
    result = post(http, GRANT, None, path) if auth == "basic" else post(http, BODY_AUTH, FORM, path)
    claims = assert_token_response(http, result)
    assert claims["sub"] == "testclient"


def test_both_paths_identical_errors(http: testing.TestClient) -> None:
    a, b = post(http, "grant_type=magic", path=TOKENS), post(http, "grant_type=magic", path=TOKENS + "/")
    assert (a.status, a.content, a.headers) == (b.status, b.content, b.headers)


# --- scope and resource ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "granted"),
    [("read", "read"), ("write", "write"), ("write read", "write read"), ("read read", "read")],
)
def test_scope_narrowing(http: testing.TestClient, scope: str, granted: str) -> None:
    result = post(http, urlencode({"grant_type": "client_credentials", "scope": scope}))
    assert result.status_code == 200, result.text
    assert result.json["scope"] == granted
    assert verify(http, result.json["access_token"])["scope"] == granted


def test_empty_scope_means_the_default(http: testing.TestClient) -> None:
    assert post(http, GRANT + "&scope=").json["scope"] == "read write"


@pytest.mark.parametrize("scope", ["admin", "read admin", "read  write", " read", "READ", "x" * 2000])
def test_invalid_scope(http: testing.TestClient, scope: str) -> None:
    result = post(http, urlencode({"grant_type": "client_credentials", "scope": scope}))
    assert_oauth_error(result, 400, "invalid_scope")


@pytest.mark.parametrize(("resource", "aud"), [(None, API), (API, API), (REPORTS, REPORTS)])
def test_resource_selects_the_audience(http: testing.TestClient, resource: str | None, aud: str) -> None:
    params = {"grant_type": "client_credentials"} | ({"resource": resource} if resource else {})
    result = post(http, urlencode(params))
    assert result.status_code == 200, result.text
    assert verify(http, result.json["access_token"], audience=aud)["aud"] == aud


@pytest.mark.parametrize(
    "resource", ["https://evil.example", API + "/", "https://API.example.com", "api", ISSUER]
)
def test_invalid_target(http: testing.TestClient, resource: str) -> None:
    result = post(http, urlencode({"grant_type": "client_credentials", "resource": resource}))
    assert_oauth_error(result, 400, "invalid_target")


# --- grant_type -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(module_keys: Path) -> testing.TestClient:
    """An app with a confidential client that may only use authorization_code."""
    settings = parse_settings(
        {
            "issuer": ISSUER,
            "allow_http_issuer": True,  # the suite's http://testserver (issue 18)
            "clients": [
                {
                    "id": "web",
                    "secret_hash": hash_secret("websecret", log_n=10),
                    "grant_types": ["authorization_code"],
                    "redirect_uris": ["https://web.example.com/cb"],
                }
            ],
        },
        "limited.toml",
        {},
    )
    return build(settings, module_keys)


def test_grant_not_allowed_for_the_client(limited: testing.TestClient) -> None:
    body = assert_oauth_error(post(limited, GRANT, basic("web", "websecret")), 400, "unauthorized_client")
    assert "websecret" not in json.dumps(body)


def test_grant_not_allowed_still_needs_authentication(limited: testing.TestClient) -> None:
    # A wrong secret is invalid_client first: the grant check never tells strangers anything.
    assert_oauth_error(post(limited, GRANT, basic("web", "wrong")), 401, "invalid_client")


# --- malformed requests -----------------------------------------------------------------------


def test_charset_utf8_is_fine(http: testing.TestClient) -> None:
    headers = {**basic(), "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    assert post(http, GRANT, headers).status_code == 200


def test_body_just_under_the_cap_is_fine(http: testing.TestClient) -> None:
    body = GRANT + "&pad="
    body += "x" * (MAX_BODY - len(body))
    assert post(http, body).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "client_secret=testpassword",
        "client_id=testclient&client_secret=testpassword",
        "grant_type=client_credentials",
        "x=1",
    ],
)
def test_parameters_in_the_query_string(http: testing.TestClient, query: str) -> None:
    # RFC 6749 §2.3.1: client credentials MUST NOT be in the request URI.
    for headers, body in ((None, GRANT), (FORM, BODY_AUTH)):
        assert_oauth_error(post(http, body, headers, query=query), 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&scope=r\xe9ad",
        b"grant_type=client_credentials&scope=%E9",
        b"grant_type=client_credentials&scope=\xff\xfe",
        "grant_type=client_credentials&scope=réad".encode(),
    ],
    ids=["latin-1 byte", "percent latin-1", "invalid bytes", "raw utf-8"],
)
def test_non_utf8_or_raw_bytes(http: testing.TestClient, body: bytes) -> None:
    assert_oauth_error(post(http, body), 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials%00",
        b"grant_type=client_credentials&scope=read%00",
        b"grant_type=client_credentials&scope=read\x00",
        b"grant_type=client_credentials&client_id=testclient&client_secret=testpassword%00",
    ],
)
def test_nul_bytes(http: testing.TestClient, body: bytes) -> None:
    headers = FORM if b"client_id" in body else None
    assert_oauth_error(post(http, body, headers), 400, "invalid_request")


def test_nul_in_basic_secret_is_refused(http: testing.TestClient) -> None:
    token = base64.b64encode(b"testclient:testpassword%00").decode()
    assert_oauth_error(post(http, GRANT, {**FORM, "Authorization": f"Basic {token}"}), 401, "invalid_client")


# --- client authentication over HTTP ----------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        (FORM, GRANT, 401, "invalid_client"),
        (basic("testclient", "wrong"), GRANT, 401, "invalid_client"),
        ({**FORM, "Authorization": "Bearer abc"}, GRANT, 401, "invalid_client"),
        ({**FORM, "Authorization": "Basic !!!"}, GRANT, 401, "invalid_client"),
        ({**FORM, "Authorization": "Basic"}, GRANT, 401, "invalid_client"),
        (FORM, GRANT + "&client_id=testclient", 401, "invalid_client"),
        (basic(), BODY_AUTH, 400, "invalid_request"),
        (basic(), GRANT + "&client_id=other", 400, "invalid_request"),
    ],
    ids=[
        "none",
        "wrong secret",
        "bearer",
        "bad base64",
        "scheme alone",
        "id without secret",
        "basic and body",
        "body id differs",
    ],
)
def test_client_authentication_errors(
    http: testing.TestClient, headers: dict[str, str], body: str, status: int, error: str
) -> None:
    assert_oauth_error(post(http, body, headers), status, error)


# --- failures inside the server ---------------------------------------------------------------


@pytest.fixture
def failing_grant(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BaseException]]:
    """Make the client_credentials grant raise whatever the test puts in the list."""
    raised: list[BaseException] = []

    def handle(self: ClientCredentialsGrant, request: Any) -> dict[str, Any]:
        raise raised[0]

    monkeypatch.setattr(ClientCredentialsGrant, "handle", handle)
    yield raised


def test_unexpected_exception_is_a_logged_500(
    http: testing.TestClient, failing_grant: list[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    failing_grant.append(RuntimeError("db password is hunter2 at /srv/internal.py"))
    with caplog.at_level(logging.ERROR, logger="jwtauth"):
        result = post(http)
    body = assert_oauth_error(result, 500, "server_error")
    assert "hunter2" not in result.text and "internal.py" not in result.text
    assert "RuntimeError" not in result.text and "Traceback" not in result.text
    assert body == {"error": "server_error", "error_description": "internal error"}
    records = [r for r in caplog.records if r.exc_info is not None]
    assert records, "the traceback must be logged"
    assert "Traceback" in caplog.text and "hunter2" in caplog.text


@pytest.mark.parametrize(
    "exc",
    [
        redis.ConnectionError("Error 111 connecting"),
        redis.TimeoutError("Timeout reading"),
        # Every outage a client cannot fix: failover, loading, resharding, a full store.
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.sentinel.MasterNotFoundError("No master found for 'mymaster'"),
        redis.exceptions.ClusterDownError("The cluster is down"),
        redis.exceptions.MasterDownError("Link with MASTER is down"),
        redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"),
        redis.exceptions.ClusterError("TTL exhausted."),
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.ResponseError("BUSY Redis is busy running a script."),
        redis.exceptions.ResponseError("MISCONF Errors writing to the AOF file"),
        redis.exceptions.RedisClusterException("Redis Cluster cannot be connected. Please provide..."),
        redis.exceptions.SlotNotCoveredError("Slot 1234 is not covered by the cluster."),
    ],
)
def test_store_down_is_503(
    http: testing.TestClient,
    failing_grant: list[BaseException],
    caplog: pytest.LogCaptureFixture,
    exc: redis.RedisError,
) -> None:
    failing_grant.append(exc)
    with caplog.at_level(logging.ERROR, logger="jwtauth"):
        result = post(http)
    assert_oauth_error(result, 503, "temporarily_unavailable")
    assert int(result.headers["Retry-After"]) >= 1
    assert "111" not in result.text and "Timeout" not in result.text
    assert "store unavailable" in caplog.text


@pytest.mark.parametrize(
    "exc",
    [
        redis.ResponseError("ERR Error running script (call to f_abc): @user_script:3: bad argument"),
        redis.exceptions.RedisClusterException("EVALSHA - all keys must map to the same key slot"),
        redis.exceptions.DataError("Invalid input of type: 'NoneType'."),
    ],
)
def test_store_bug_is_a_logged_500(
    http: testing.TestClient,
    failing_grant: list[BaseException],
    caplog: pytest.LogCaptureFixture,
    exc: Exception,
) -> None:
    # A broken script or keys in different cluster slots is our bug, not an outage to retry.
    failing_grant.append(exc)
    with caplog.at_level(logging.ERROR, logger="jwtauth"):
        result = post(http)
    assert assert_oauth_error(result, 500, "server_error") == {
        "error": "server_error",
        "error_description": "internal error",
    }
    assert "Traceback" in caplog.text


def test_no_signing_key_is_503(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.mkdir()
    write_pepper(empty)  # a folder with a pepper but no key yet
    client = build(replace(load_settings(FIXTURES, env={}), issuer=ISSUER), empty)
    result = post(client)
    assert_oauth_error(result, 503, "temporarily_unavailable")
    assert int(result.headers["Retry-After"]) >= 1


def test_client_credentials_works_with_the_store_down(module_keys: Path) -> None:
    # DESIGN: client_credentials needs no Redis at all and keeps working when Redis is down.
    from tests.support import free_port

    settings = replace(load_settings(FIXTURES, env={}), issuer=ISSUER)
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    app = create_app(settings, KeyRing(module_keys, retire_after=960), dead, checker=CHECKER, pepper=PEPPER)
    result = testing.TestClient(app).simulate_post(TOKENS, body=GRANT, headers=basic())
    assert result.status_code == 200, result.text
