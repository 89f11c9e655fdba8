"""Tests for jwtauth.tokens.claims: RFC 9068 claims, signing, the token response (pure functions)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jwtauth.cli.keyfolder import new_record
from jwtauth.keys import KeyRecord
from jwtauth.resources.audit import token_ids
from jwtauth.tokens.claims import ACCESS_TOKEN_TYP, access_claims, iso8601, mint, token_response

NOW = 1_700_000_000


def claims(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "issuer": "https://auth.example.com",
        "subject": "svc",
        "client_id": "svc",
        "audience": "https://api.example.com",
        "scope": ("read", "write"),
        "now": NOW,
        "ttl": 900,
        "jti": "abc123",
    }
    args.update(overrides)
    return access_claims(**args)


def test_access_claims_are_rfc9068() -> None:
    assert claims() == {
        "iss": "https://auth.example.com",
        "sub": "svc",
        "aud": "https://api.example.com",
        "exp": NOW + 900,
        "iat": NOW,
        "jti": "abc123",
        "client_id": "svc",
        "scope": "read write",
    }


def test_optional_claims() -> None:
    out = claims(subject="alice", family_id="fam1", auth_time=NOW - 30)
    assert out["sub"] == "alice" and out["client_id"] == "svc"
    assert out["fid"] == "fam1" and out["auth_time"] == NOW - 30


def test_empty_scope_is_an_empty_string() -> None:
    assert claims(scope=())["scope"] == ""


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def record(alg: str, rsa_key: rsa.RSAPrivateKey) -> KeyRecord:
    if alg in ("RS256", "PS256"):
        return KeyRecord(f"kid-{alg}", alg, NOW, NOW, None, rsa_key)
    return new_record(alg, NOW, NOW)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_mint_signs_with_kid_and_typ(alg: str, rsa_key: rsa.RSAPrivateKey) -> None:
    key = record(alg, rsa_key)
    now = int(time.time())
    token = mint(claims(now=now), key)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": key.kid, "typ": ACCESS_TOKEN_TYP}
    assert ACCESS_TOKEN_TYP == "at+jwt"
    decoded = jwt.decode(
        token,
        key.private_key.public_key(),
        algorithms=[alg],
        audience="https://api.example.com",
        issuer="https://auth.example.com",
    )
    assert decoded == claims(now=now)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_mint_builds_what_pyjwt_builds(alg: str, rsa_key: rsa.RSAPrivateKey) -> None:
    # mint serializes the JWS itself (hot path); the bytes must stay PyJWT's, the signature
    # too where the algorithm is deterministic (RSASSA-PKCS1-v1_5, Ed25519).
    key, body = record(alg, rsa_key), {**claims(now=int(time.time())), "fid": "family"}
    token = mint(body, key)
    reference = jwt.encode(body, key.private_key, algorithm=alg, headers={"kid": key.kid, "typ": "at+jwt"})
    assert token.rsplit(".", 1)[0] == reference.rsplit(".", 1)[0]
    if alg in ("RS256", "EdDSA"):
        assert token == reference


def test_mint_does_not_verify_under_another_key(rsa_key: rsa.RSAPrivateKey) -> None:
    token = mint(claims(now=int(time.time())), new_record("ES256", NOW, NOW))
    other = new_record("ES256", NOW, NOW)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other.private_key.public_key(), algorithms=["ES256"], audience="x")


def test_iso8601() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00+00:00"
    assert iso8601(NOW) == "2023-11-14T22:13:20+00:00"


def test_token_response() -> None:
    body = token_response("tok", claims())
    assert body == {
        "access_token": "tok",
        "token_type": "Bearer",
        "expires_in": 900,
        "expires_at": iso8601(NOW + 900),
        "scope": "read write",
    }
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == NOW + 900


def test_token_response_with_refresh_token() -> None:
    assert token_response("tok", claims(), refresh_token="rt")["refresh_token"] == "rt"


@pytest.mark.parametrize("family_id", [None, "fam-1"])
def test_token_response_carries_the_ids_the_audit_line_would_decode(family_id: str | None) -> None:
    signed = {**claims(), **({"fid": family_id} if family_id else {})}
    token = mint(signed, new_record("ES256", now=time.time(), active_from=time.time()))
    body = token_response(token, signed)
    assert body.ids == token_ids(token) and body.ids["jti"] == signed["jti"]
    assert ("fid" in body.ids) == (family_id is not None)
