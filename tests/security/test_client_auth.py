"""Client authentication (RFC 6749 §2.3, Appendix B): wrong, unknown, empty and malformed
credentials, encoding, credentials twice or in the URL, oversize input, and timing."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from falcon import testing

from jwtauth.accounts.hashing import hash_secret
from jwtauth.app import create_app
from jwtauth.config.clients import User
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from tests.helpers import (
    FORM,
    INTROSPECT,
    REVOKE,
    TOKENS,
    assert_clean_error,
    basic_header,
    call,
    login,
    token,
)

CC = {"grant_type": "client_credentials"}
SECRET = "testpassword"
FAILED = {"error": "invalid_client", "error_description": "client authentication failed"}


def raw_basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# --- wrong, unknown, empty ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        ("testclient", "wrong"),
        ("testclient", "testpassword "),
        ("testclient", " testpassword"),
        ("testclient", "TESTPASSWORD"),
        ("testclient", "testpasswor"),
        ("testclient", "testpassword1"),
        ("testclient", "ｔｅｓｔｐａｓｓｗｏｒｄ"),  # noqa: RUF001  # fullwidth: no Unicode normalisation
        ("testclient", "othersecret"),  # another client's secret
        ("TestClient", "testpassword"),  # ids are exact
        ("testclient ", "testpassword"),
        ("nobody", "testpassword"),
        ("spa", "anything"),  # a public client has no secret to present
        ("other", "testpassword"),
    ],
)
def test_wrong_and_unknown_credentials_get_one_answer(
    http: testing.TestClient, auth: tuple[str, str]
) -> None:
    result = token(http, CC, auth=auth)
    assert_clean_error(result, 401, "invalid_client", secrets_sent=[auth[1]])
    assert result.json == FAILED


@pytest.mark.parametrize(
    "body",
    [
        "grant_type=client_credentials&client_id=testclient&client_secret=wrong",
        "grant_type=client_credentials&client_id=nobody&client_secret=testpassword",
        "grant_type=client_credentials&client_id=testclient",  # a confidential client without secret
        "grant_type=client_credentials&client_id=testclient&client_secret=",  # empty = omitted
        "grant_type=client_credentials&client_id=spa&client_secret=x",
    ],
)
def test_wrong_and_unknown_body_credentials_get_one_answer(http: testing.TestClient, body: str) -> None:
    result = call(http, TOKENS, body, auth=None)
    assert_clean_error(result, 401, "invalid_client")
    assert result.json == FAILED


def test_no_credentials_at_all_is_invalid_client(http: testing.TestClient) -> None:
    assert_clean_error(token(http, CC, auth=None), 401, "invalid_client")


def test_an_empty_client_id_is_no_client(http: testing.TestClient) -> None:
    result = call(
        http, TOKENS, "grant_type=client_credentials&client_id=&client_secret=testpassword", auth=None
    )
    assert_clean_error(result, 401, "invalid_client")


@pytest.mark.parametrize(
    "raw",
    [
        b"testclient:",
        b":testpassword",
        b":",
        b"testclient",
        b"",
        b"testclient:testpassword\x00",
        b"testclient\x00:testpassword",
    ],
)
def test_empty_or_partial_basic_credentials_are_refused(http: testing.TestClient, raw: bytes) -> None:
    result = call(http, TOKENS, CC, auth=None, headers=raw_basic(raw))
    assert_clean_error(result, 401, "invalid_client")


# --- malformed Basic headers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic ",
        "Basic !!!!",
        "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ",  # padding missing
        "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=== ",
        "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ= extra",
        "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=,Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),  # not UTF-8
        "Basic " + base64.b64encode(b"testclient:%ZZ%").decode(),
        "Basic " + base64.b64encode(b"testclient:%ff").decode(),  # percent-decodes to non-UTF-8
        "Basic " + base64.urlsafe_b64encode(b"testclient:testpassword?>?").decode(),  # base64url alphabet
        "Bearer dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=",
        "Digest username=testclient",
        "Negotiate abc",
        "dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=",
        "Basic\x00dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ=",
    ],
)
def test_malformed_authorization_headers_are_invalid_client(http: testing.TestClient, header: str) -> None:
    result = call(http, TOKENS, CC, auth=None, headers={"Authorization": header})
    assert_clean_error(result, 401, "invalid_client")


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC", "bAsIc"])
def test_the_scheme_is_case_insensitive(http: testing.TestClient, scheme: str) -> None:
    """RFC 9110 §11.1: auth-scheme is case-insensitive."""
    value = base64.b64encode(b"testclient:testpassword").decode()
    assert (
        call(http, TOKENS, CC, auth=None, headers={"Authorization": f"{scheme} {value}"}).status_code == 200
    )


# --- Appendix B encoding ---------------------------------------------------------------------------

ODD_SECRET = "p@ss:w+rd %/é&="


@pytest.fixture
def odd_http(make_app: Callable[..., testing.TestClient], sec_settings: Settings) -> testing.TestClient:
    odd = dataclasses.replace(
        sec_settings.clients[1], client_id="odd", secret_hash=hash_secret(ODD_SECRET, log_n=10)
    )
    return make_app(clients=(*sec_settings.clients, odd))


def test_basic_credentials_are_form_urlencoded_before_base64(odd_http: testing.TestClient) -> None:
    assert token(odd_http, CC, auth=("odd", ODD_SECRET)).status_code == 200


def test_an_unencoded_plus_is_a_space_so_the_raw_secret_fails(odd_http: testing.TestClient) -> None:
    raw = f"odd:{ODD_SECRET}".encode()
    result = call(odd_http, TOKENS, CC, auth=None, headers=raw_basic(raw))
    assert_clean_error(result, 401, "invalid_client")


def test_body_credentials_with_the_same_secret(odd_http: testing.TestClient) -> None:
    result = call(odd_http, TOKENS, {**CC, "client_id": "odd", "client_secret": ODD_SECRET}, auth=None)
    assert result.status_code == 200, result.text


# --- one method per request, never in the URL (RFC 6749 §2.3, §2.3.1) -------------------------


def test_basic_and_body_secret_together_are_refused(http: testing.TestClient) -> None:
    result = token(http, {**CC, "client_secret": SECRET})
    assert_clean_error(result, 400, "invalid_request", secrets_sent=[SECRET])


def test_basic_plus_a_body_secret_for_another_client_is_refused(http: testing.TestClient) -> None:
    result = token(http, {**CC, "client_id": "other", "client_secret": "othersecret"})
    assert_clean_error(result, 400, "invalid_request")


def test_a_body_client_id_that_differs_from_basic_is_refused(http: testing.TestClient) -> None:
    assert_clean_error(token(http, {**CC, "client_id": "other"}), 400, "invalid_request")


def test_a_body_client_id_that_repeats_basic_is_fine(http: testing.TestClient) -> None:
    assert token(http, {**CC, "client_id": "testclient"}).status_code == 200


@pytest.mark.parametrize("path", [TOKENS, INTROSPECT, REVOKE])
@pytest.mark.parametrize(
    "query",
    ["client_secret=testpassword", "client_id=testclient&client_secret=testpassword", "x=1"],
)
def test_parameters_in_the_url_are_refused_everywhere(
    http: testing.TestClient, path: str, query: str
) -> None:
    result = call(http, path, {**CC, "token": "x"}, query=query)
    assert_clean_error(result, 400, "invalid_request", secrets_sent=[SECRET])


# --- oversize and hostile input never reaches scrypt ----------------------------------------------




@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("testclient", "x" * 600), ("x" * 600, "testpassword"), ("testclient", "x" * 100_000)],
)
def test_oversize_credentials_cost_no_scrypt(
    http: testing.TestClient, derives: list[tuple[int, int, int]], client_id: str, secret: str
) -> None:
    result = token(http, CC, auth=(client_id, secret))
    # A Basic header past the header cap is refused before the app reads it (issue 18, item 4).
    assert_clean_error(result, 431 if len(secret) > 16384 else 401)
    assert derives == []


def test_oversize_body_credentials_cost_no_scrypt(
    http: testing.TestClient, derives: list[tuple[int, int, int]]
) -> None:
    result = call(http, TOKENS, {**CC, "client_id": "testclient", "client_secret": "x" * 5000}, auth=None)
    assert_clean_error(result, 401, "invalid_client")
    assert derives == []


# --- timing: which clients exist, how much of a secret was right ------------------------------------


def test_unknown_client_wrong_secret_and_near_miss_cost_the_same_scrypt(
    http: testing.TestClient, derives: list[tuple[int, int, int]]
) -> None:
    assert token(http, CC).status_code == 200  # the right secret is now memoised ...
    assert token(http, CC, auth=("warm-up", "x")).status_code == 401  # the dummy hash is built
    derives.clear()
    for auth in [("nobody", "testpassword"), ("testclient", "wrong"), ("testclient", "testpassworc")]:
        assert token(http, CC, auth=auth).status_code == 401
    # ... and still every failure costs one scrypt with the very same parameters.
    assert len(derives) == 3 and len(set(derives)) == 1, derives


def _odd_hash(secret: str, log_n: int, r: int, p: int) -> str:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=1 << log_n, r=r, p=p, maxmem=1 << 27, dklen=32)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"scrypt$ln={log_n},r={r},p={p}${b64(salt)}${b64(digest)}"


@pytest.mark.parametrize(("log_n", "r", "p"), [(11, 8, 1), (12, 4, 2)])
def test_the_dummy_hash_follows_the_configured_parameters(
    sec_settings: Settings,
    keyring: KeyRing,
    store: Any,
    derives: list[tuple[int, int, int]],
    log_n: int,
    r: int,
    p: int,
) -> None:
    """An unknown client or user costs what a known one with a wrong secret costs, whatever the
    configured scrypt parameters; the default checker of create_app must not assume ln=15."""
    clients = tuple(
        dataclasses.replace(c, secret_hash=_odd_hash("s", log_n, r, p))
        for c in sec_settings.clients
        if not c.public
    )
    users = tuple(User(u.username, _odd_hash("s", log_n, r, p)) for u in sec_settings.users)
    http = testing.TestClient(
        create_app(dataclasses.replace(sec_settings, clients=clients, users=users), keyring, store)
    )
    assert token(http, CC, auth=("nobody", "s")).status_code == 401
    assert token(http, CC, auth=("testclient", "wrong")).status_code == 401
    assert login(http, "nobody@example.com", "x", auth=("testclient", "s")).status_code == 400
    assert login(http, "testuser@example.com", "x", auth=("testclient", "s")).status_code == 400
    assert len(derives) >= 5 and set(derives) == {(log_n, r, p)}, derives


def test_mixed_parameters_make_the_dummy_cost_like_most_accounts(
    sec_settings: Settings, keyring: KeyRing, store: Any, derives: list[tuple[int, int, int]]
) -> None:
    secrets = [c for c in sec_settings.clients if not c.public]
    clients = [dataclasses.replace(c, secret_hash=_odd_hash("s", 11, 8, 1)) for c in secrets]
    clients[0] = dataclasses.replace(clients[0], secret_hash=_odd_hash("s", 10, 8, 1))
    http = testing.TestClient(
        create_app(dataclasses.replace(sec_settings, clients=tuple(clients)), keyring, store)
    )
    assert token(http, CC, auth=("nobody", "s")).status_code == 401
    assert derives and set(derives) == {(11, 8, 1)}, derives


def test_wall_clock_does_not_tell_unknown_clients_or_near_misses(
    sec_settings: Settings, keyring: KeyRing, store: Any
) -> None:
    """Coarse, interleaved medians with generous bounds: a structural leak (no scrypt for unknown
    clients, an early exit on a prefix) would show as a factor of ten or more."""
    clients = tuple(
        dataclasses.replace(c, secret_hash=hash_secret("s3cret-value", log_n=12)) if not c.public else c
        for c in sec_settings.clients
    )
    # The default checker, as `jwtauth serve` builds it: its dummy follows the configured hashes.
    # A limit above the probes' count: this measures the hashing, not the failure counters.
    chosen = dataclasses.replace(sec_settings, clients=clients, client_auth_failures=1000)
    http = testing.TestClient(create_app(chosen, keyring, store))
    probes = {
        "unknown": ("nobody", "s3cret-value"),
        "wrong": ("testclient", "x"),
        "near": ("testclient", "s3cret-valuf"),
    }
    times: dict[str, list[float]] = {name: [] for name in probes}
    for _ in range(9):
        for name, auth in probes.items():
            start = time.perf_counter()
            assert token(http, CC, auth=auth).status_code == 401
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    assert max(medians.values()) < 2.5 * min(medians.values()), medians


def test_a_public_client_needs_no_secret_but_gets_nothing_confidential(http: testing.TestClient) -> None:
    result = call(http, TOKENS, {"grant_type": "client_credentials", "client_id": "spa"}, auth=None)
    assert_clean_error(result, 400, "unauthorized_client")
    result = call(http, INTROSPECT, {"client_id": "spa", "token": "x"}, auth=None)
    assert_clean_error(result, 401, "invalid_client")


def test_form_header_is_used() -> None:
    assert FORM["Content-Type"] == "application/x-www-form-urlencoded"
    assert basic_header("a b", "c+d") == "Basic " + base64.b64encode(b"a+b:c%2Bd").decode()
