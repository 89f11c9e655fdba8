"""HTTP tests of POST /api/v1/revoke (RFC 7009): families end, foreign tokens are refused."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from falcon import testing

from jwtauth.cli.keyfolder import new_record
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.store import RefreshStore
from jwtauth.tokens.claims import access_claims, mint
from tests.helpers import (
    OTHER,
    PEPPER,
    REVOKE,
    TOKENS,
    Clock,
    MakeApp,
    active,
    assert_error,
    basic,
    call,
    claims_of,
    client_like,
    login,
    refresh,
    revoke,
    tokens_of,
)


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    """An app with a second confidential client `other` and a public client `spa`."""
    clients = (client_like(settings, "other"), client_like(settings, "spa", public=True))
    return make_app(clients=clients)


def assert_revoked_ok(result: testing.Result) -> None:
    assert result.status_code == 200, result.text
    assert result.text == ""
    assert result.headers["Cache-Control"] == "no-store"


def assert_family_dead(http: testing.TestClient, access: str, refresh_token: str) -> None:
    assert_error(refresh(http, refresh_token), 400, "invalid_grant")
    assert not active(http, refresh_token)
    assert not active(http, access)


def assert_family_alive(http: testing.TestClient, access: str, refresh_token: str) -> None:
    assert active(http, access) and active(http, refresh_token)


def test_revoking_a_refresh_token_ends_its_family(http: testing.TestClient) -> None:
    login_access, first = tokens_of(login(http))
    access, second = tokens_of(refresh(http, first))
    assert_revoked_ok(revoke(http, second))
    assert_family_dead(http, access, second)
    assert not active(http, login_access)


def test_revoking_a_rotated_out_refresh_token_ends_the_family_too(http: testing.TestClient) -> None:
    _, first = tokens_of(login(http))
    access, second = tokens_of(refresh(http, first))
    assert_revoked_ok(revoke(http, first))
    assert_family_dead(http, access, second)


def test_revoking_an_access_token_ends_its_family(http: testing.TestClient) -> None:
    # RFC 7009 §2.1: revoking an access token MAY revoke the grant; ours names its family.
    access, refresh_token = tokens_of(login(http))
    assert_revoked_ok(revoke(http, access))
    assert_family_dead(http, access, refresh_token)


def test_a_self_contained_access_token_cannot_be_revoked(http: testing.TestClient) -> None:
    result = call(http, TOKENS, {"grant_type": "client_credentials"})
    access = result.json["access_token"]
    refused = revoke(http, access)
    # RFC 7009 §2.2.1: the server cannot revoke this type of token; it stays valid until exp.
    assert_error(refused, 400, "unsupported_token_type")
    assert "valid until its exp" in refused.json["error_description"]
    assert active(http, access)


def test_an_access_token_whose_family_expired_cannot_be_revoked(
    make_app: MakeApp, settings: Settings, store: Any, clock: Clock
) -> None:
    http = make_app(refresh_idle_ttl=60, refresh_absolute_ttl=60)
    access, _ = tokens_of(login(http))
    clock.now += 60  # the token has 840 s left; the family's keys expire now (no tombstone)
    store.delete(f"{settings.redis_prefix}{{f:{claims_of(access)['fid']}}}")  # as Redis's TTL does
    assert_error(revoke(http, access), 400, "unsupported_token_type")
    assert active(http, access)


@pytest.mark.parametrize(
    "token",
    ["nonsense", "A" * 22 + "." + "B" * 43, "eyJhbGciOiJub25lIn0.e30.", "x" * 9000],
    ids=["garbage", "unknown-refresh", "unsigned-jwt", "huge"],
)
def test_unknown_tokens_are_200(http: testing.TestClient, token: str) -> None:
    assert_revoked_ok(revoke(http, token))


def test_an_expired_access_token_is_200_and_revokes_nothing(http: testing.TestClient, clock: Clock) -> None:
    access, refresh_token = tokens_of(login(http))
    clock.now += 900
    assert_revoked_ok(revoke(http, access))
    tokens_of(refresh(http, refresh_token))


def test_a_forged_access_token_naming_a_real_family_revokes_nothing(
    http: testing.TestClient, keyring: KeyRing, clock: Clock
) -> None:
    access, refresh_token = tokens_of(login(http))
    signer = keyring.signer()
    assert signer is not None
    family_id = refresh_token.split(".")[0]
    claims = access_claims(
        issuer="http://testserver",
        subject="testuser@example.com",
        client_id="testclient",
        audience="https://api.example.com",
        scope=("read",),
        now=int(clock.now),
        ttl=900,
        jti="forged",
        family_id=family_id,
    )
    # Another key under the signer's kid: the signature cannot verify.
    impostor = dataclasses.replace(new_record("ES256", time.time(), time.time()), kid=signer.kid)
    forged = mint(claims, impostor)
    assert_revoked_ok(revoke(http, forged))
    assert_family_alive(http, access, refresh_token)


def test_a_guessed_refresh_secret_revokes_nothing(http: testing.TestClient) -> None:
    access, refresh_token = tokens_of(login(http))
    assert_revoked_ok(revoke(http, refresh_token.split(".")[0] + "." + "A" * 43))
    assert_family_alive(http, access, refresh_token)


def test_revocation_is_idempotent(http: testing.TestClient) -> None:
    access, refresh_token = tokens_of(login(http))
    for token in (refresh_token, refresh_token, access):
        assert_revoked_ok(revoke(http, token))


@pytest.mark.parametrize("which", ["access", "refresh"])
def test_another_confidential_clients_token_is_refused_and_stays_valid(
    http: testing.TestClient, which: str
) -> None:
    access, refresh_token = tokens_of(login(http))
    refused = revoke(http, access if which == "access" else refresh_token, auth=OTHER)
    # RFC 7009 §2.1: the request is refused and the client is informed.
    assert_error(refused, 400, "unauthorized_client")
    assert_family_alive(http, access, refresh_token)
    tokens_of(refresh(http, refresh_token))


@pytest.mark.parametrize("which", ["access", "refresh"])
def test_a_public_client_naming_another_clients_token_gets_200_and_revokes_nothing(
    http: testing.TestClient, which: str
) -> None:
    access, refresh_token = tokens_of(login(http))
    # A client_id is no proof of identity: an error here would confirm the token is live.
    assert_revoked_ok(revoke(http, access if which == "access" else refresh_token, auth="spa"))
    assert_family_alive(http, access, refresh_token)


def test_a_public_client_revokes_its_own_tokens(
    http: testing.TestClient, store: Any, settings: Settings
) -> None:
    access, refresh_token = tokens_of(login(http, auth="spa"))
    assert_revoked_ok(revoke(http, refresh_token, auth="spa"))
    assert_error(refresh(http, refresh_token, auth="spa"), 400, "invalid_grant")
    family = RefreshStore(store, pepper=PEPPER, prefix=settings.redis_prefix)
    assert family.is_revoked(claims_of(access)["fid"])


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "id_token", "bogus"])
def test_any_hint_still_finds_either_type(http: testing.TestClient, hint: str) -> None:
    # RFC 7009 §2.1: a wrong or unknown hint only means the server extends its search.
    for kind in ("access", "refresh"):
        access, refresh_token = tokens_of(login(http))
        token = access if kind == "access" else refresh_token
        assert_revoked_ok(revoke(http, token, token_type_hint=hint))
        assert_family_dead(http, access, refresh_token)


def test_client_authentication_is_required(http: testing.TestClient) -> None:
    access, refresh_token = tokens_of(login(http))
    for auth in (None, ("testclient", "wrong"), ("nobody", "x")):
        result = revoke(http, refresh_token, auth=auth)
        assert_error(result, 401, "invalid_client")
        assert result.headers["WWW-Authenticate"].startswith("Basic")
    assert_family_alive(http, access, refresh_token)


def test_malformed_requests(http: testing.TestClient) -> None:
    assert_error(http.simulate_post(REVOKE, body="", headers=basic()), 400, "invalid_request")
    in_query = http.simulate_post(REVOKE, query_string="token=x", body="", headers=basic())
    assert_error(in_query, 400, "invalid_request")
    assert http.simulate_get(REVOKE).status_code == 405
    auth_only = {"Authorization": basic()["Authorization"]}
    assert http.simulate_post(REVOKE, json={"token": "x"}, headers=auth_only).status_code == 415
    assert_revoked_ok(http.simulate_post(REVOKE + "/", body="token=x", headers=basic()))


def test_discovery_lists_the_endpoint(http: testing.TestClient) -> None:
    meta = http.simulate_get("/.well-known/oauth-authorization-server").json
    assert meta["revocation_endpoint"] == "http://testserver/api/v1/revoke"
    assert meta["revocation_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",  # tests/test_assertions.py
        "none",
    ]
