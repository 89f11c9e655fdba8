"""id_tokens from the code exchange and on refresh (OpenID Connect Core §3.1.3.3, §12.2)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from falcon import testing

from jwtauth.app import create_app
from jwtauth.cli import keyfolder
from jwtauth.config.settings import Settings
from jwtauth.keys import KeyRing
from jwtauth.oidc.idtoken import half_hash, id_token_claims
from tests.authflow import authorize, code_from
from tests.helpers import README_QUERY, basic
from tests.oidc.flow import at_hash, code_login, verified_id_token

SUB = "5f0c1d2e-8a4b-4c6d-9e7f-0a1b2c3d4e5f"  # the demo user's, from the fixtures


def test_the_code_exchange_returns_a_strictly_valid_id_token(client: testing.TestClient) -> None:
    body = code_login(client).json
    claims = verified_id_token(client, body["id_token"])
    assert claims["sub"] == SUB  # the stable subject, not the username
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["at_hash"] == at_hash(body["access_token"])
    assert claims["aud"] == claims["azp"] == "testclient"
    assert claims["amr"] == ["pwd"] and claims["auth_time"] <= claims["iat"]
    # Core §5.4: with an access token, profile and email claims come from userinfo only.
    assert "email" not in claims and "name" not in claims and "c_hash" not in claims


def test_no_openid_scope_no_id_token(client: testing.TestClient) -> None:
    body = code_login(client, scope="read write").json
    assert "id_token" not in body and "access_token" in body


def test_the_nonce_is_echoed_only_when_sent(client: testing.TestClient) -> None:
    body = code_login(client, scope="openid", nonce="x").json
    assert verified_id_token(client, body["id_token"])["nonce"] == "x"
    code = code_from(authorize(client, {**README_QUERY, "scope": "openid"}))
    token = client.simulate_post(
        "/api/v1/tokens", body=f"grant_type=authorization_code&code={code}", headers=basic()
    )
    assert "nonce" not in verified_id_token(client, token.json["id_token"])


def test_refresh_returns_a_new_id_token_for_the_same_login(client: testing.TestClient) -> None:
    first = code_login(client).json
    original = verified_id_token(client, first["id_token"])
    body = urlencode({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    again = client.simulate_post("/api/v1/tokens", body=body, headers=basic()).json
    claims = verified_id_token(client, again["id_token"])
    # Core §12.2: same iss, sub, aud, azp and auth_time; no nonce; at_hash of the new token.
    for name in ("iss", "sub", "aud", "azp", "auth_time"):
        assert claims[name] == original[name], name
    assert "nonce" not in claims and claims["at_hash"] == at_hash(again["access_token"])


def test_narrowing_away_openid_on_refresh_gives_no_id_token(client: testing.TestClient) -> None:
    first = code_login(client).json
    body = urlencode(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "read"}
    )
    again = client.simulate_post("/api/v1/tokens", body=body, headers=basic())
    assert again.status_code == 200 and "id_token" not in again.json


@pytest.mark.parametrize("alg", ["RS256", "PS256", "EdDSA"])
def test_every_signing_algorithm_hashes_with_its_own_hash(
    settings: Settings, store: Any, alg: str, tmp_path: Path
) -> None:
    folder = tmp_path / alg
    keyfolder.ensure(folder, alg, now=time.time(), retire_after=960)
    ring = KeyRing(folder, retire_after=960)
    chosen = dataclasses.replace(settings, signing_algorithm=alg)
    http = testing.TestClient(create_app(chosen, ring, store))
    body = code_login(http).json
    claims = verified_id_token(http, body["id_token"])
    assert claims["at_hash"] == half_hash(body["access_token"], alg)
    expected = 43 if alg == "EdDSA" else 22  # half of SHA-512 vs half of SHA-256, base64url
    assert len(claims["at_hash"]) == expected


def test_claims_are_pure() -> None:
    claims = id_token_claims(
        issuer="https://i", subject="s", client_id="c", now=100, ttl=50, auth_time=90, nonce="n", sid="x"
    )
    assert claims == {
        "iss": "https://i",
        "sub": "s",
        "aud": "c",
        "exp": 150,
        "iat": 100,
        "auth_time": 90,
        "azp": "c",
        "nonce": "n",
        "sid": "x",
    }
