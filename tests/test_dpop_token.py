"""DPoP at the token endpoint (RFC 9449 §5): every grant binds its access token to the proof's key."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import jwt
import pytest
import redis
from falcon import testing

from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.oauth.dpop import STATELESS_WINDOW
from jwtauth.store.pepper import Pepper
from tests.authflow import authorize, code_from
from tests.dpopkit import DPoPKey
from tests.helpers import (
    INTROSPECT,
    SPA,
    SPA_URI,
    Clock,
    MakeApp,
    assert_clean_error,
    call,
    pkce_pair,
    snapshot,
    suite_settings,
    token,
)

Make = Callable[..., testing.TestClient]


@pytest.fixture
def make(make_app: MakeApp, settings: Settings) -> Make:
    """Return make_app on the suite's accounts (a public client "spa" among them)."""

    def build(**changes: Any) -> testing.TestClient:
        changes.setdefault("settings", suite_settings(settings))
        return make_app(**changes)

    return build


def claims_of(body: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(body["access_token"], options={"verify_signature": False})
    return claims


def dpop_token(
    http: testing.TestClient, key: DPoPKey, clock: Clock, params: dict[str, str], **kw: Any
) -> Any:
    return call(http, "/api/v1/tokens", params, headers={"DPoP": key.proof(iat=clock.now)}, **kw)


def test_client_credentials_binds_the_token_to_the_key(make: Make, clock: Clock) -> None:
    http, key = make(), DPoPKey()
    result = dpop_token(http, key, clock, {"grant_type": "client_credentials"})
    assert result.status_code == 200, result.text
    assert result.json["token_type"] == "DPoP"
    assert claims_of(result.json)["cnf"] == {"jkt": key.jkt}
    # Introspection tells the owner which key (RFC 9449 §6.2).
    seen = call(http, INTROSPECT, {"token": result.json["access_token"]})
    assert seen.json["active"] and seen.json["cnf"] == {"jkt": key.jkt} and seen.json["token_type"] == "DPoP"
    # Without a proof the same request stays a bearer token.
    plain = token(http, {"grant_type": "client_credentials"})
    assert plain.json["token_type"] == "Bearer" and "cnf" not in claims_of(plain.json)


def test_password_grant_is_bound_but_its_confidential_family_is_not(make: Make, clock: Clock) -> None:
    http, key = make(), DPoPKey()
    result = dpop_token(http, key, clock, {"grant_type": "password", "username": "testuser@example.com",
                                           "password": "testpassword"})
    assert claims_of(result.json)["cnf"] == {"jkt": key.jkt}
    # RFC 9449 §5: a confidential client's refresh token is bound to its credentials, not the key.
    again = token(http, {"grant_type": "refresh_token", "refresh_token": result.json["refresh_token"]})
    assert again.status_code == 200 and again.json["token_type"] == "Bearer"


def public_code(http: testing.TestClient, **extra: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": SPA, "redirect_uri": SPA_URI,
              "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return code_from(authorize(http, params)), verifier


def exchange(http: testing.TestClient, code: str, verifier: str, headers: dict[str, str]) -> Any:
    params = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
              "redirect_uri": SPA_URI}
    return call(http, "/api/v1/tokens", params, auth=SPA, headers=headers)


def test_public_refresh_family_is_bound_to_the_key(make: Make, clock: Clock, store: Any) -> None:
    http, key, thief = make(), DPoPKey(), DPoPKey()
    code, verifier = public_code(http)
    first = exchange(http, code, verifier, {"DPoP": key.proof(iat=clock.now)})
    assert first.status_code == 200 and claims_of(first.json)["cnf"]["jkt"] == key.jkt
    refresh = first.json["refresh_token"]
    def grants() -> dict[bytes, Any]:  # everything but the proofs' replay markers
        return {k: v for k, v in snapshot(store).items() if b"dpop:" not in k}

    before = grants()
    for headers in ({}, {"DPoP": thief.proof(iat=clock.now)}):
        refused = call(http, "/api/v1/tokens", {"grant_type": "refresh_token", "refresh_token": refresh},
                       auth=SPA, headers=headers)
        assert_clean_error(refused, 400, "invalid_grant")
        assert grants() == before  # nothing rotated, nothing revoked
    ok = call(http, "/api/v1/tokens", {"grant_type": "refresh_token", "refresh_token": refresh},
              auth=SPA, headers={"DPoP": key.proof(iat=clock.now)})
    assert ok.status_code == 200 and claims_of(ok.json)["cnf"]["jkt"] == key.jkt


def test_dpop_jkt_binds_the_code(make: Make, clock: Clock) -> None:
    http, key, other = make(), DPoPKey(), DPoPKey()
    code, verifier = public_code(http, dpop_jkt=key.jkt)
    refused = exchange(http, code, verifier, {"DPoP": other.proof(iat=clock.now)})
    assert_clean_error(refused, 400, "invalid_grant")
    assert_clean_error(exchange(http, code, verifier, {}), 400, "invalid_grant")
    # Refused before the take: the code still works for the key it names.
    ok = exchange(http, code, verifier, {"DPoP": key.proof(iat=clock.now)})
    assert ok.status_code == 200 and claims_of(ok.json)["cnf"]["jkt"] == key.jkt


def test_malformed_dpop_jkt_goes_back_to_the_client(make: Make) -> None:
    http = make()
    params = {"response_type": "code", "client_id": SPA, "redirect_uri": SPA_URI, "dpop_jkt": "short",
              "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    result = http.simulate_get("/authorize", params=params)
    assert result.status_code == 303 and "error=invalid_request" in result.headers["Location"]


def test_require_dpop_refuses_unbound_requests(make: Make, settings: Settings, clock: Clock) -> None:
    demo = dataclasses.replace(suite_settings(settings).clients[0], require_dpop=True)
    http = make(clients=(demo,))
    assert_clean_error(token(http, {"grant_type": "client_credentials"}), 400, "invalid_request")
    assert dpop_token(http, DPoPKey(), clock, {"grant_type": "client_credentials"}).status_code == 200


def test_nonce_required_then_accepted(make: Make, clock: Clock) -> None:
    http, key = make(dpop_require_nonce=True), DPoPKey()
    first = dpop_token(http, key, clock, {"grant_type": "client_credentials"})
    assert_clean_error(first, 400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    ok = call(http, "/api/v1/tokens", {"grant_type": "client_credentials"},
              headers={"DPoP": key.proof(iat=clock.now, nonce=nonce)})
    assert ok.status_code == 200 and ok.headers["DPoP-Nonce"]


def test_nonces_survive_a_signing_key_rotation_not_a_new_pepper(
    make: Make, clock: Clock, keys_dir: Path
) -> None:
    # The nonce secret comes from the pepper, not the signer: a rotation keeps nonces valid.
    http, key = make(dpop_require_nonce=True), DPoPKey()
    nonce = dpop_token(http, key, clock, {"grant_type": "client_credentials"}).headers["DPoP-Nonce"]
    new = keyfolder.rotate(keys_dir, "ES256", publish_ahead=0, retire_after=960)
    ring = KeyRing(keys_dir, retire_after=960, clock=lambda: time.time() + 5)  # past its start
    signer = ring.signer()
    assert signer is not None and signer.kid == new.kid  # the signer changed
    rotated = make(dpop_require_nonce=True, keyring=ring)
    proof = {"DPoP": key.proof(iat=clock.now, nonce=nonce)}
    accepted = call(rotated, "/api/v1/tokens", {"grant_type": "client_credentials"}, headers=proof)
    assert accepted.status_code == 200, accepted.text
    other = make(dpop_require_nonce=True, keyring=KeyRing(keys_dir, retire_after=960),
                 pepper=Pepper(b"another deployment's pepper 32B!"))  # fmt: skip
    proof = {"DPoP": key.proof(iat=clock.now, nonce=nonce)}
    refused = call(other, "/api/v1/tokens", {"grant_type": "client_credentials"}, headers=proof)
    assert_clean_error(refused, 400, "use_dpop_nonce")


def test_metadata_lists_the_proof_algorithms(make: Make) -> None:
    body = make().simulate_get("/.well-known/oauth-authorization-server").json
    assert body["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "PS256", "RS256"]


def test_redis_down_client_credentials_falls_back_to_nonces(make: Make, clock: Clock) -> None:
    """SECURITY.md: without the replay set, a DPoP client_credentials request needs a nonce."""
    down = redis.Redis(port=1, socket_connect_timeout=0.05, retry=None)
    http, key = make(store=down), DPoPKey()
    first = dpop_token(http, key, clock, {"grant_type": "client_credentials"})
    assert_clean_error(first, 400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    ok = call(http, "/api/v1/tokens", {"grant_type": "client_credentials"},
              headers={"DPoP": key.proof(iat=clock.now, nonce=nonce)})
    assert ok.status_code == 200 and claims_of(ok.json)["cnf"]["jkt"] == key.jkt
    stale = call(http, "/api/v1/tokens", {"grant_type": "client_credentials"},
                 headers={"DPoP": key.proof(iat=clock.now - STATELESS_WINDOW - 1, nonce=nonce)})
    assert_clean_error(stale, 400, "invalid_dpop_proof")
    # A grant that needs Redis answers 503 as it does without DPoP.
    pw = dpop_token(http, key, clock, {"grant_type": "password", "username": "testuser@example.com",
                                       "password": "testpassword"})
    assert_clean_error(pw, 503, "temporarily_unavailable")
    # Plain client_credentials keeps working with no Redis at all.
    assert token(http, {"grant_type": "client_credentials"}).status_code == 200


def test_replay_marker_has_a_ttl(make: Make, clock: Clock, store: Any) -> None:
    assert dpop_token(make(), DPoPKey(), clock, {"grant_type": "client_credentials"}).status_code == 200
    keys = [k for k in store.scan_iter() if b"dpop:" in k]
    assert len(keys) == 1 and 0 < store.pttl(keys[0]) <= 65_000
    assert isinstance(store, fakeredis.FakeRedis)
