"""Token endpoint hygiene: grant_type games, duplicated parameters, content types, methods,
oversize input, framing, trailing slash, and the shape of every error (RFC 6749 §3.2, §5.2)."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from falcon import testing

from jwtauth.resources.forms import MAX_BODY
from tests.helpers import (
    FORM,
    TOKENS,
    assert_clean_error,
    basic_header,
    call,
    login,
    pkce_pair,
    token,
    tokens_of,
)

CC = {"grant_type": "client_credentials"}
SECRET = "testpassword"


# --- grant_type ------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"scope": "read"}], ids=["empty", "other parameters"])
def test_missing_grant_type_is_invalid_request(http: testing.TestClient, params: dict[str, str]) -> None:
    assert_clean_error(token(http, params), 400, "invalid_request", secrets_sent=[SECRET])


def test_empty_grant_type_counts_as_missing(http: testing.TestClient) -> None:
    assert_clean_error(token(http, {"grant_type": ""}), 400, "invalid_request")


@pytest.mark.parametrize(
    "grant_type",
    [
        "magic",
        "client_credentials+",
        "Client_Credentials",
        "CLIENT_CREDENTIALS",
        "client_credentials ",
        " client_credentials",
        "client_credentials\t",
        "client-credentials",
        "clientcredentials",
        "client_credentials\u200b",
        "Password",
        "REFRESH_TOKEN",
        "Authorization_Code",
        "implicit",  # a response_type of /authorize, never a token-endpoint grant
        "token",
        "code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "URN:IETF:PARAMS:OAUTH:GRANT-TYPE:DEVICE_CODE",  # RFC 8628's URN, case-varied
        "device_code",  # the settings file's short name is not a grant_type
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "../client_credentials",
        "__class__",
        "__proto__",
        "none",
        "*",
    ],
)
def test_unknown_and_case_varied_grant_types_are_unsupported(
    http: testing.TestClient, grant_type: str
) -> None:
    assert_clean_error(token(http, {"grant_type": grant_type}), 400, "unsupported_grant_type")


def test_unknown_grant_type_is_refused_without_touching_client_credentials(http: testing.TestClient) -> None:
    """The grant is looked up first: an unauthenticated probe learns only what metadata says."""
    result = token(http, {"grant_type": "magic"}, auth=("testclient", "wrong"))
    assert_clean_error(result, 400, "unsupported_grant_type")


def test_a_client_without_the_grant_is_unauthorized_client(make_app: Any, sec_settings: Any) -> None:
    import dataclasses

    limited = dataclasses.replace(sec_settings.clients[1], grant_types=frozenset({"client_credentials"}))
    http = make_app(clients=(sec_settings.clients[0], limited))
    result = login(http, auth=("other", "othersecret"))
    assert_clean_error(result, 400, "unauthorized_client")


# --- duplicated parameters (RFC 6749 §3.1, §3.2) -------------------------------------------------

_DUPLICABLE = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "username",
    "password",
]


@pytest.mark.parametrize("name", _DUPLICABLE)
@pytest.mark.parametrize("same", [True, False], ids=["same-value", "other-value"])
def test_every_repeated_parameter_is_invalid_request(
    http: testing.TestClient, state: Any, name: str, same: bool
) -> None:
    before = state()
    base = {
        "grant_type": "password",
        "client_id": "testclient",
        "client_secret": SECRET,
        "username": "testuser@example.com",
        "password": "testpassword",
    }
    pairs = [*base.items(), (name, base.get(name, "x")), (name, base.get(name, "x") if same else "y")]
    if name not in base:
        pairs = [*base.items(), (name, "x"), (name, "x" if same else "y")]
    result = call(http, TOKENS, urlencode(pairs), auth=None)
    body = assert_clean_error(result, 400, "invalid_request", secrets_sent=[SECRET, "testpassword"])
    assert name in body["error_description"]
    assert state() == before  # no token, no family, no counter


def test_repeated_resource_is_invalid_target(http: testing.TestClient) -> None:
    """RFC 8707 §2 allows several resources; we issue one audience per token, so: invalid_target."""
    body = urlencode(
        [*CC.items(), ("resource", "https://api.example.com"), ("resource", "https://reports.example.com")]
    )
    result = call(http, TOKENS, body)
    description = assert_clean_error(result, 400, "invalid_target")["error_description"]
    assert "one resource" in description


def test_repeated_identical_resource_is_invalid_target_too(http: testing.TestClient) -> None:
    body = urlencode(
        [*CC.items(), ("resource", "https://api.example.com")] * 1 + [("resource", "https://api.example.com")]
    )
    assert_clean_error(call(http, TOKENS, body), 400, "invalid_target")


def test_a_parameter_repeated_with_an_empty_value_is_still_repeated(http: testing.TestClient) -> None:
    result = call(http, TOKENS, "grant_type=client_credentials&scope=read&scope=")
    assert_clean_error(result, 400, "invalid_request")


# --- content types and encodings (RFC 6749 §3.2: application/x-www-form-urlencoded) -------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencodedx",
        "application/x-www-form",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/x-www-form-urlencoded; charset=utf-16",
        "text/html",
        "*/*",
    ],
)
def test_other_content_types_are_refused(http: testing.TestClient, content_type: str | None) -> None:
    headers = {"Authorization": basic_header("testclient", SECRET)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    result = http.simulate_post(TOKENS, body="grant_type=client_credentials", headers=headers)
    assert_clean_error(result, 415, "invalid_request")


def test_json_body_is_refused_even_with_the_form_content_type(http: testing.TestClient) -> None:
    body = json.dumps({"grant_type": "client_credentials"})
    assert_clean_error(call(http, TOKENS, body), 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&scope=r%FFad",  # percent-encoded non-UTF-8
        b"grant_type=client_credentials&scope=r\xc3\xa9ad",  # raw non-ASCII bytes
        b"grant_type=client_credentials&scope=read%00",  # NUL
        b"grant_type=client_credentials\x00",
        b"grant_type=client_credentials&%00=1",
    ],
)
def test_undecodable_or_nul_bodies_are_invalid_request(http: testing.TestClient, body: bytes) -> None:
    result = http.simulate_post(
        TOKENS, body=body, headers={**FORM, "Authorization": basic_header("testclient", SECRET)}
    )
    assert_clean_error(result, 400, "invalid_request")


# --- methods (RFC 6749 §3.2: POST) and Falcon's own errors ------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
@pytest.mark.parametrize("path", [TOKENS, TOKENS + "/"])
def test_every_other_method_is_a_clean_405_with_allow_post(
    http: testing.TestClient, method: str, path: str
) -> None:
    result = http.simulate_request(
        method, path, headers={"Authorization": basic_header("testclient", SECRET)}
    )
    assert result.status_code == 405
    assert result.headers.get("Allow") == "POST"
    assert result.headers.get("Cache-Control") == "no-store"
    if method != "HEAD":
        assert_clean_error(result, 405, "invalid_request")


def test_credentials_in_the_query_string_are_refused(http: testing.TestClient) -> None:
    query = "client_id=testclient&client_secret=testpassword"
    result = call(http, TOKENS, CC, query=query)
    assert_clean_error(result, 400, "invalid_request", secrets_sent=["testpassword"])


def test_an_unknown_path_below_the_api_is_a_clean_json_error(http: testing.TestClient) -> None:
    result = http.simulate_post("/api/v1/tokenz", body="grant_type=client_credentials", headers=FORM)
    assert_clean_error(result, 404)


def test_a_malformed_content_length_is_a_clean_400(app_call: Any) -> None:
    status, headers, body = app_call(TOKENS, b"grant_type=client_credentials", {"CONTENT_LENGTH": "12abc"})
    assert status.startswith("400")
    assert headers["cache-control"] == "no-store"
    assert json.loads(body)["error"] == "invalid_request"


def test_a_negative_content_length_is_a_clean_400(app_call: Any) -> None:
    status, _, body = app_call(TOKENS, b"grant_type=client_credentials", {"CONTENT_LENGTH": "-1"})
    assert status.startswith("400")
    assert json.loads(body)["error"] == "invalid_request"


# --- size limits ------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_413(http: testing.TestClient) -> None:
    body = "grant_type=client_credentials&scope=" + "a" * MAX_BODY
    assert_clean_error(call(http, TOKENS, body), 413, "invalid_request")


def test_a_chunked_body_is_read(app_call: Any) -> None:
    """No Content-Length (chunked, decoded by the server): the form is read, not taken as empty."""
    status, _, body = app_call(
        TOKENS, b"grant_type=client_credentials", {"CONTENT_LENGTH": None, "wsgi.input_terminated": True}
    )
    assert status.startswith("200"), body
    assert json.loads(body)["token_type"] == "Bearer"


def test_a_chunked_body_over_the_cap_is_413(app_call: Any) -> None:
    payload = b"grant_type=client_credentials&scope=" + b"a" * (4 * MAX_BODY)
    status, _, body = app_call(TOKENS, payload, {"CONTENT_LENGTH": None, "wsgi.input_terminated": True})
    assert status.startswith("413"), body


def test_a_body_longer_than_its_content_length_is_cut_at_the_length(http: testing.TestClient) -> None:
    """The server reads Content-Length bytes: smuggled trailing parameters never count."""
    raw = b"grant_type=client_credentials&scope=read"
    result = http.simulate_post(
        TOKENS,
        body=raw,
        headers={**FORM, "Authorization": basic_header("testclient", SECRET), "Content-Length": "29"},
    )
    assert result.status_code == 200, result.text
    assert result.json["scope"] == "read write"  # the default: `scope=read` was beyond the length


@pytest.mark.parametrize("size", [8 * 1024, 64 * 1024])
def test_huge_authorization_headers_are_invalid_client_fast(http: testing.TestClient, size: int) -> None:
    result = call(http, TOKENS, CC, auth=None, headers={"Authorization": "Basic " + "A" * size})
    # Past the header cap (16 KiB, issue 18 item 4): 431 before anything reads the header.
    assert_clean_error(result, 401 if size < 16384 else 431)


def test_many_headers_do_not_matter_below_the_cap(http: testing.TestClient) -> None:
    headers = {f"X-Junk-{i}": "x" * 100 for i in range(100)}
    result = call(http, TOKENS, CC, headers=headers)
    assert result.status_code == 200, result.text
    headers = {f"X-Junk-{i}": "x" * 100 for i in range(200)}
    assert_clean_error(call(http, TOKENS, CC, headers=headers), 431, "invalid_request")


def test_huge_parameter_values_are_refused_without_500(http: testing.TestClient) -> None:
    for name in ("scope", "resource", "code", "refresh_token", "username", "password", "code_verifier"):
        params = {"grant_type": "password", "username": "u", "password": "p", name: "x" * 15000}
        result = token(http, params)
        assert result.status_code < 500, (name, result.text)
        assert_clean_error(result)


# --- the trailing slash (DESIGN: both paths) -----------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"grant_type": "nope"},
        CC,
        {"grant_type": "password", "username": "x", "password": "y"},
        {"grant_type": "authorization_code", "code": "A" * 43},
        {"grant_type": "refresh_token", "refresh_token": "garbage"},
    ],
)
def test_both_paths_answer_identically(http: testing.TestClient, params: dict[str, str]) -> None:
    a = token(http, params)
    b = call(http, TOKENS + "/", params)
    assert a.status_code == b.status_code
    if a.status_code != 200:
        assert a.json == b.json
        assert a.headers.get("Cache-Control") == b.headers.get("Cache-Control") == "no-store"


# --- success responses too ----------------------------------------------------------------------


def test_token_responses_are_never_cached(http: testing.TestClient) -> None:
    result = login(http)
    tokens_of(result)
    assert result.headers["Cache-Control"] == "no-store"
    assert result.headers["Pragma"] == "no-cache"


# --- a bug becomes server_error without detail ---------------------------------------------------


def test_an_unexpected_exception_is_a_bare_server_error(
    http: testing.TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jwtauth.grants import client_credentials

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail /etc/jwtauth testpassword")

    monkeypatch.setattr(client_credentials.ClientCredentialsGrant, "handle", explode)
    result = token(http, CC)
    body = assert_clean_error(result, 500, "server_error", secrets_sent=["testpassword"])
    assert "internal detail" not in json.dumps(body)


def test_authorization_code_with_a_verifier_and_no_code_is_invalid_request(http: testing.TestClient) -> None:
    verifier, _ = pkce_pair()
    params = {"grant_type": "authorization_code", "code_verifier": verifier}
    assert_clean_error(token(http, params), 400, "invalid_request")


# --- raw WSGI calls, for what falcon.testing refuses to send -------------------------------------


@pytest.fixture
def app_call(http: testing.TestClient) -> Any:
    """Return call(path, body, environ_changes) -> (status, lower-cased headers, body) on raw WSGI."""
    app = http.app

    def run(path: str, body: bytes, changes: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
        env = testing.create_environ(
            path=path,
            method="POST",
            headers={**FORM, "Authorization": basic_header("testclient", SECRET)},
            body=body,
        )
        env["wsgi.input"] = io.BytesIO(body)
        for key, value in changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, {k.lower(): v for k, v in headers}
            return lambda data: None

        chunks = app(env, start_response)
        data = b"".join(chunks)
        return captured["status"], captured["headers"], data

    return run


@pytest.mark.e2e
def test_a_chunked_request_on_a_real_serve(serve: Any) -> None:
    """granian decodes the chunks and ends the stream: the form arrives whole, or 413 past the cap."""
    import requests

    with serve() as server:

        def chunks(payload: bytes) -> Any:
            yield from (payload[i : i + 7] for i in range(0, len(payload), 7))

        ok = requests.post(
            server.base + TOKENS,
            data=chunks(b"grant_type=client_credentials"),
            headers={**FORM, "Authorization": basic_header("testclient", SECRET)},
            timeout=10,
        )
        assert ok.request.headers.get("Transfer-Encoding") == "chunked"
        assert ok.status_code == 200, ok.text
        big = requests.post(
            server.base + TOKENS,
            data=chunks(b"grant_type=client_credentials&scope=" + b"a" * (2 * MAX_BODY)),
            headers={**FORM, "Authorization": basic_header("testclient", SECRET)},
            timeout=10,
        )
        assert big.status_code == 413, big.text
        assert big.headers["Cache-Control"] == "no-store"
