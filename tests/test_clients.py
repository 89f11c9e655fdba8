"""Tests for jwtauth.accounts.clients: RFC 6749 §2.3 client authentication, Basic and body."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus, urlencode

import pytest
from falcon import testing

from jwtauth.accounts.clients import MAX_CREDENTIAL, ClientRegistry
from jwtauth.accounts.hashing import SecretChecker, hash_secret
from jwtauth.app import create_app
from jwtauth.config.settings import Settings, parse_settings
from jwtauth.errors import InvalidClient, InvalidRequest, OAuthError
from jwtauth.keys import KeyRing
from tests.helpers import FORM, ISSUER, ScryptCounter

LOW = 10
# RFC 6749 §2.3.1: both are form-urlencoded before Basic joins them, so any of these may appear.
ODD_ID = "app+1 %41/é"
ODD_SECRET = "p:a+s%s w/o&r=d:é"


def make_settings() -> Settings:
    data = {
        "clients": [
            {"id": "testclient", "secret_hash": hash_secret("testpassword", log_n=LOW)},
            {"id": ODD_ID, "secret_hash": hash_secret(ODD_SECRET, log_n=LOW)},
            {
                "id": "spa",
                "public": True,
                "grant_types": ["authorization_code"],
                "redirect_uris": ["https://spa.example.com/cb"],
            },
        ]
    }
    return parse_settings(data, "test.toml", {})


SETTINGS = make_settings()


def basic_header(client_id: str, secret: str, *, encode: bool = True) -> str:
    """Build a Basic header; encode=True applies the §2.3.1 form-urlencoding first."""
    if encode:
        client_id, secret = quote_plus(client_id), quote_plus(secret)
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def raw_basic(payload: bytes) -> str:
    return "Basic " + base64.b64encode(payload).decode()






@pytest.fixture
def registry() -> ClientRegistry:
    return ClientRegistry(SETTINGS.clients, SecretChecker(dummy_log_n=LOW))


def test_get(registry: ClientRegistry) -> None:
    client = registry.get("testclient")
    assert client is not None and client.client_id == "testclient"
    assert registry.get("nobody") is None
    assert registry.get(None) is None and registry.get("") is None


# --- successful authentication ----------------------------------------------------------------


def test_basic(registry: ClientRegistry) -> None:
    assert registry.authenticate(basic_header("testclient", "testpassword"), {}).client_id == "testclient"


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC", "bAsIc"])
def test_basic_scheme_is_case_insensitive(registry: ClientRegistry, scheme: str) -> None:
    # RFC 9110 §11.1: the authentication scheme is case-insensitive.
    header = basic_header("testclient", "testpassword").replace("Basic", scheme, 1)
    assert registry.authenticate(header, {}).client_id == "testclient"


def test_basic_form_urlencoding(registry: ClientRegistry) -> None:
    client = registry.authenticate(basic_header(ODD_ID, ODD_SECRET), {})
    assert client.client_id == ODD_ID


def test_basic_with_percent_encoded_space(registry: ClientRegistry) -> None:
    # %20 and + both mean a space in form encoding.
    payload = quote_plus(ODD_ID).replace("+", "%20") + ":" + quote_plus(ODD_SECRET)
    assert registry.authenticate(raw_basic(payload.encode()), {}).client_id == ODD_ID


def test_basic_without_the_encoding_fails_for_special_characters(registry: ClientRegistry) -> None:
    # Sent raw, '+' reads as a space and '%s' stays literal: not the registered secret.
    with pytest.raises(InvalidClient):
        registry.authenticate(basic_header(ODD_ID, ODD_SECRET, encode=False), {})


def test_basic_plain_secret_with_colon_needs_no_escaping() -> None:
    stored = hash_secret("a:b:c", log_n=LOW)
    settings = parse_settings({"clients": [{"id": "c", "secret_hash": stored}]}, "t.toml", {})
    registry = ClientRegistry(settings.clients, SecretChecker(dummy_log_n=LOW))
    # The id cannot contain ':' (config), so the first ':' always ends it.
    assert registry.authenticate(basic_header("c", "a:b:c", encode=False), {}).client_id == "c"


def test_basic_with_matching_body_client_id(registry: ClientRegistry) -> None:
    header = basic_header("testclient", "testpassword")
    assert registry.authenticate(header, {"client_id": "testclient"}).client_id == "testclient"


def test_body(registry: ClientRegistry) -> None:
    params = {"client_id": "testclient", "client_secret": "testpassword"}
    assert registry.authenticate(None, params).client_id == "testclient"


def test_body_with_odd_characters(registry: ClientRegistry) -> None:
    # The form layer already decoded the body, so the values arrive as they are.
    assert registry.authenticate(None, {"client_id": ODD_ID, "client_secret": ODD_SECRET}).client_id == ODD_ID


def test_empty_authorization_header_falls_back_to_body(registry: ClientRegistry) -> None:
    params = {"client_id": "testclient", "client_secret": "testpassword"}
    assert registry.authenticate("", params).client_id == "testclient"


def test_public_client_identifies_itself(registry: ClientRegistry) -> None:
    client = registry.authenticate(None, {"client_id": "spa"})
    assert client.client_id == "spa" and client.public


# --- failures -------------------------------------------------------------------------------


def fails(registry: ClientRegistry, header: str | None, params: dict[str, str]) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        registry.authenticate(header, params)
    return info.value


def test_both_methods_at_once(registry: ClientRegistry) -> None:
    # RFC 6749 §2.3: MUST NOT use more than one authentication method in each request.
    error = fails(
        registry,
        basic_header("testclient", "testpassword"),
        {"client_id": "testclient", "client_secret": "testpassword"},
    )
    assert isinstance(error, InvalidRequest) and error.status == 400


def test_body_client_id_differs_from_basic(registry: ClientRegistry) -> None:
    error = fails(registry, basic_header("testclient", "testpassword"), {"client_id": "spa"})
    assert isinstance(error, InvalidRequest)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(raw_basic(b"testclient"), id="no colon"),
        pytest.param("Basic !!!notbase64!!!", id="bad base64"),
        pytest.param("Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ", id="missing padding"),
        pytest.param(raw_basic(b"testclient:\xff\xfe"), id="non-utf8 bytes"),
        pytest.param(raw_basic(b"testclient:%ff%fe"), id="non-utf8 after percent-decoding"),
        pytest.param(raw_basic(b"testclient:testpassword%00"), id="NUL in secret"),
        pytest.param(raw_basic(b"testclient:testpassword\x00"), id="raw NUL in secret"),
        pytest.param("Basic ", id="empty"),
        pytest.param("Basic      ", id="only spaces"),
        pytest.param("Basic", id="scheme alone"),
        pytest.param("Basic " + "A" * (4 * MAX_CREDENTIAL + 4), id="oversize"),
        pytest.param(raw_basic(b"testclient:" + b"x" * (MAX_CREDENTIAL + 1)), id="oversize secret"),
        pytest.param(raw_basic(b":testpassword"), id="empty id"),
        pytest.param("Bearer abc.def.ghi", id="bearer"),
        pytest.param('Digest username="testclient", realm="x"', id="digest"),
        pytest.param("Basicdxxx", id="no space after scheme"),
    ],
)
def test_malformed_or_foreign_authorization(registry: ClientRegistry, header: str) -> None:
    error = fails(registry, header, {})
    assert isinstance(error, InvalidClient)
    assert error.status == 401 and error.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no credentials"),
        pytest.param({"client_secret": "testpassword"}, id="secret without id"),
        pytest.param({"client_id": "testclient"}, id="confidential without secret"),
        pytest.param({"client_id": "nobody"}, id="unknown without secret"),
        pytest.param({"client_id": "spa", "client_secret": "x"}, id="public with a secret"),
        pytest.param({"client_id": "testclient", "client_secret": "x" * 600}, id="oversize secret"),
        pytest.param({"client_id": "x" * 600, "client_secret": "testpassword"}, id="oversize id"),
    ],
)
def test_body_failures(registry: ClientRegistry, params: dict[str, str]) -> None:
    assert isinstance(fails(registry, None, params), InvalidClient)


def test_public_client_cannot_use_basic(registry: ClientRegistry) -> None:
    assert isinstance(fails(registry, basic_header("spa", ""), {}), InvalidClient)


def test_unknown_client_and_wrong_secret_look_and_cost_the_same(
    registry: ClientRegistry, scrypt_calls: ScryptCounter
) -> None:
    registry.authenticate(basic_header("testclient", "testpassword"), {})  # proven: memo exists
    fails(registry, basic_header("warm", "up"), {})  # builds the dummy hash once
    errors = []
    for client_id in ("testclient", "nobody"):
        for header, params in (
            (basic_header(client_id, "wrong"), {}),
            (None, {"client_id": client_id, "client_secret": "wrong"}),
        ):
            scrypt_calls.calls = 0
            error = fails(registry, header, params)
            assert scrypt_calls.calls == 1, (client_id, header)
            errors.append((type(error), error.body(), error.headers, error.status))
    assert all(e == errors[0] for e in errors)


# --- over HTTP: the same answer, byte for byte --------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> testing.TestClient:
    import time

    from jwtauth.cli import keyfolder

    directory = tmp_path_factory.mktemp("keys")
    keyfolder.ensure(directory, "ES256", now=time.time(), retire_after=960)
    import fakeredis

    settings = parse_settings(
        {
            "issuer": ISSUER,
            "allow_http_issuer": True,  # the suite's http://testserver (issue 18)
            "clients": [
                {"id": "testclient", "secret_hash": hash_secret("testpassword", log_n=LOW)},
                {"id": ODD_ID, "secret_hash": hash_secret(ODD_SECRET, log_n=LOW)},
            ],
        },
        "test.toml",
        {},
    )
    app = create_app(
        settings,
        KeyRing(directory, retire_after=960),
        fakeredis.FakeRedis(server=fakeredis.FakeServer()),
        checker=SecretChecker(dummy_log_n=LOW),
    )
    # Every answer echoes X-Request-ID: one fixed id keeps identical requests' answers identical.
    return testing.TestClient(app, headers={"X-Request-ID": "test-request"})


def post(http: testing.TestClient, header: str | None, params: dict[str, str]) -> testing.Result:
    headers = dict(FORM)
    if header is not None:
        headers["Authorization"] = header
    return http.simulate_post("/api/v1/tokens", body=urlencode(params), headers=headers)


def test_http_odd_credentials_by_basic_and_body(http: testing.TestClient) -> None:
    grant = {"grant_type": "client_credentials"}
    by_basic = post(http, basic_header(ODD_ID, ODD_SECRET), grant)
    by_body = post(http, None, {**grant, "client_id": ODD_ID, "client_secret": ODD_SECRET})
    assert by_basic.status_code == by_body.status_code == 200, (by_basic.text, by_body.text)


def test_http_unknown_client_and_wrong_secret_are_byte_identical(http: testing.TestClient) -> None:
    grant = {"grant_type": "client_credentials"}
    answers = [
        post(http, basic_header("testclient", "wrong"), grant),
        post(http, basic_header("nobody", "wrong"), grant),
        post(http, None, {**grant, "client_id": "testclient", "client_secret": "wrong"}),
        post(http, None, {**grant, "client_id": "nobody", "client_secret": "wrong"}),
    ]
    first = answers[0]
    assert first.status_code == 401
    assert first.json == {"error": "invalid_client", "error_description": "client authentication failed"}
    assert first.headers["WWW-Authenticate"].startswith("Basic ")
    for answer in answers[1:]:
        assert answer.status_code == first.status_code
        assert answer.content == first.content
        assert answer.headers == first.headers


def test_http_failures_never_echo_the_secret(http: testing.TestClient) -> None:
    secret = "SuperSecretValue123"
    grant = {"grant_type": "client_credentials"}
    for answer in (
        post(http, basic_header("testclient", secret), grant),
        post(http, None, {**grant, "client_id": "testclient", "client_secret": secret}),
        post(http, basic_header("testclient", secret), {**grant, "client_secret": secret}),
    ):
        assert answer.status_code in (400, 401)
        assert secret not in answer.text and secret not in str(answer.headers)
