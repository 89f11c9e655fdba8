"""HTTP tests of POST /api/v1/introspect (RFC 7662): active tokens, and exactly {"active": false}."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from falcon import testing

from jwtauth.cli import keyfolder
from jwtauth.cli.keyfolder import new_record
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRecord, KeyRing
from jwtauth.tokens.claims import access_claims
from tests.helpers import (
    API,
    INTROSPECT,
    OTHER,
    TOKENS,
    USER,
    Clock,
    MakeApp,
    assert_error,
    basic,
    call,
    claims_of,
    client_like,
    introspect,
    login,
    refresh,
    tokens_of,
)

INACTIVE = {"active": False}
FIELDS = {"active", "scope", "client_id", "sub", "exp", "iat", "token_type", "aud", "iss", "jti"}


@pytest.fixture
def http(make_app: MakeApp, settings: Settings) -> testing.TestClient:
    """An app with a second confidential client `other` and a public client `spa`."""
    clients = (client_like(settings, "other"), client_like(settings, "spa", public=True))
    return make_app(clients=clients)


def verdict(http: testing.TestClient, token: str, **kwargs: Any) -> dict[str, Any]:
    result = introspect(http, token, **kwargs)
    assert result.status_code == 200, result.text
    assert result.headers["Cache-Control"] == "no-store"
    assert result.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = result.json
    return body


def forge(
    keyring: KeyRing, clock: Clock, *, key: KeyRecord | None = None, typ: str = "at+jwt", **changes: Any
) -> str:
    """Return an access token signed by our signer (or `key`), with claims changed."""
    signer = keyring.signer()
    assert signer is not None
    claims = access_claims(
        issuer="http://testserver",
        subject=USER,
        client_id="testclient",
        audience=API,
        scope=("read",),
        now=int(clock.now),
        ttl=900,
        jti="made-up",
    )
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    key = key or signer
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": typ})


def test_an_access_token_is_active_with_its_claims(http: testing.TestClient, clock: Clock) -> None:
    access, _ = tokens_of(login(http, scope="read"))
    body = verdict(http, access)
    claims = claims_of(access)
    assert set(body) == FIELDS
    assert body == {
        "active": True,
        "scope": "read",
        "client_id": "testclient",
        "sub": USER,
        "aud": API,
        "iss": "http://testserver",
        "exp": int(clock.now) + 900,
        "iat": int(clock.now),
        "jti": claims["jti"],
        "token_type": "Bearer",
    }


def test_a_refresh_token_is_active_with_its_familys_state(http: testing.TestClient, clock: Clock) -> None:
    _, first = tokens_of(login(http))
    created = clock.now
    clock.now += 100
    _, second = tokens_of(refresh(http, first))
    body = verdict(http, second)
    assert set(body) == FIELDS
    assert body == {
        "active": True,
        "scope": "read write",
        "client_id": "testclient",
        "sub": USER,
        "aud": API,
        "iss": "http://testserver",
        "exp": int(clock.now) + 14 * 86400,  # idle expiry, renewed by the rotation
        "iat": int(created),  # when the grant was made
        "jti": second.split(".")[0] + ":2",
        "token_type": "refresh_token",
    }
    assert second.split(".")[1] not in str(body)


def test_a_client_credentials_token_is_active(http: testing.TestClient) -> None:
    access = call(http, TOKENS, {"grant_type": "client_credentials"}).json["access_token"]
    body = verdict(http, access)
    assert body["active"] is True and body["sub"] == body["client_id"] == "testclient"


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "bogus"])
def test_the_hint_never_changes_the_answer(http: testing.TestClient, hint: str | None) -> None:
    access, refresh_token = tokens_of(login(http))
    extra = {"token_type_hint": hint} if hint else {}
    assert verdict(http, access, **extra)["token_type"] == "Bearer"
    assert verdict(http, refresh_token, **extra)["token_type"] == "refresh_token"


def test_expired_tokens_are_inactive(make_app: MakeApp, clock: Clock) -> None:
    http = make_app(refresh_idle_ttl=1000)
    access, refresh_token = tokens_of(login(http))
    clock.now += 899
    assert verdict(http, access)["active"] is True
    clock.now += 1
    assert verdict(http, access) == INACTIVE
    clock.now += 100
    assert verdict(http, refresh_token) == INACTIVE


def test_rotated_out_and_revoked_tokens_are_inactive(http: testing.TestClient, clock: Clock) -> None:
    login_access, first = tokens_of(login(http))
    access, second = tokens_of(refresh(http, first))
    assert verdict(http, first) == INACTIVE
    assert verdict(http, login_access)["active"] is True  # rotation keeps the family's tokens
    clock.now += 10
    assert_error(refresh(http, first), 400, "invalid_grant")  # reuse revokes the family
    for token in (login_access, access, second):
        assert verdict(http, token) == INACTIVE


def test_another_clients_tokens_are_inactive_for_it(http: testing.TestClient) -> None:
    access, refresh_token = tokens_of(login(http))
    for token in (access, refresh_token):
        assert verdict(http, token, auth=OTHER) == INACTIVE
        assert verdict(http, token)["active"] is True


def test_forged_and_foreign_access_tokens_are_inactive(
    http: testing.TestClient, keyring: KeyRing, clock: Clock
) -> None:
    assert verdict(http, forge(keyring, clock))["active"] is True  # the control: a genuine signature
    signer = keyring.signer()
    assert signer is not None
    impostor = dataclasses.replace(new_record("ES256", time.time(), time.time()), kid=signer.kid)
    genuine = forge(keyring, clock)
    header, _, signature = genuine.split(".")
    tampered_payload = forge(keyring, clock, scope="read write admin").split(".")[1]
    forged = {
        "other-key-same-kid": forge(keyring, clock, key=impostor),
        "unknown-kid": forge(keyring, clock, key=new_record("ES256", time.time(), time.time())),
        "typ-jwt": forge(keyring, clock, typ="JWT"),
        "other-issuer": forge(keyring, clock, iss="http://evil.example"),
        "no-exp": forge(keyring, clock, exp=None),
        "string-exp": forge(keyring, clock, exp=str(int(clock.now) + 900)),
        "no-client-id": forge(keyring, clock, client_id=None),
        "swapped-payload": f"{header}.{tampered_payload}.{signature}",
        "unsigned": jwt.encode(claims_of(genuine), "", algorithm="none", headers={"kid": signer.kid}),
        "hs256-with-public-key": _hs256_confusion(genuine, signer),
        "garbage": "a.b.c",
        "huge": "a" * 9000,
    }
    for name, token in forged.items():
        assert verdict(http, token) == INACTIVE, name


def _hs256_confusion(genuine: str, signer: KeyRecord) -> str:
    """Return an HS256 token keyed with the signer's public key (algorithm confusion)."""
    public = signer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = jwt.utils.base64url_encode(
        jwt.utils.force_bytes(f'{{"alg":"HS256","kid":"{signer.kid}","typ":"at+jwt"}}')
    )
    body = genuine.split(".")[1].encode()
    mac = hmac.new(public, head + b"." + body, hashlib.sha256).digest()
    return (head + b"." + body + b"." + jwt.utils.base64url_encode(mac)).decode()


def test_a_revoked_signing_key_makes_its_tokens_inactive(
    make_app: MakeApp, keys_dir: Any, clock: Clock
) -> None:
    ring = KeyRing(keys_dir, retire_after=960, check_interval=0)
    http = make_app(keyring=ring)
    access, _ = tokens_of(login(http))
    kid = claims_kid(access)
    keyfolder.revoke(keys_dir, kid, retire_after=960)
    assert verdict(http, access) == INACTIVE


def claims_kid(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def test_public_clients_and_unauthenticated_callers_cannot_introspect(http: testing.TestClient) -> None:
    access, _ = tokens_of(login(http, auth="spa"))
    for auth in ("spa", None, ("testclient", "wrong"), ("spa", "")):
        result = introspect(http, access, auth=auth)
        assert_error(result, 401, "invalid_client")
        assert "WWW-Authenticate" in result.headers


def test_malformed_requests(http: testing.TestClient) -> None:
    assert_error(http.simulate_post(INTROSPECT, body="", headers=basic()), 400, "invalid_request")
    in_query = http.simulate_post(INTROSPECT, query_string="token=x", body="", headers=basic())
    assert_error(in_query, 400, "invalid_request")
    assert http.simulate_get(INTROSPECT).status_code == 405
    assert http.simulate_post(INTROSPECT + "/", body="token=x", headers=basic()).json == INACTIVE


def test_discovery_lists_the_endpoint(http: testing.TestClient) -> None:
    meta = http.simulate_get("/.well-known/oauth-authorization-server").json
    assert meta["introspection_endpoint"] == "http://testserver/api/v1/introspect"
    assert meta["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",  # tests/test_assertions.py
    ]
