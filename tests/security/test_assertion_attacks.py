"""Attacks on private_key_jwt (RFC 7523 §2.2; RFC 8725): every forged, bent or replayed assertion
gets the very body an unknown client gets, and writes nothing to Redis.

The forgeries follow tests/security/test_forged_tokens.py: alg none, HMAC keyed with the public
key, key material and key URLs in the header, crit, psychic signatures, kid games, claim games;
plus what RFC 7523 §3 and CVE-2025-27370/27371 (audience arrays naming another party) add."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from falcon import testing

from tests.assertionkit import ClientKey, key_client, params
from tests.helpers import ISSUER, TOKENS, Clock, MakeApp, assert_clean_error, call, snapshot

CC = {"grant_type": "client_credentials"}
BANK, OTHER_BANK = ClientKey(kid="bank-1"), ClientKey(kid="other-1")
Forge = Callable[[float], str]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


def claims(now: float, **changes: Any) -> dict[str, Any]:
    base = {"iss": "bank", "sub": "bank", "aud": ISSUER, "exp": int(now) + 60, "iat": int(now), "jti": "j"}
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def hand_signed(now: float, header: dict[str, Any], payload: bytes | None = None, **changes: Any) -> str:
    """Sign with BANK's real key whatever header (or raw payload) we like: only its checks can refuse it."""
    signing_input = f"{segment(header)}.{segment(payload or claims(now, **changes))}"
    signature = jwt.get_algorithm_by_name("ES256").sign(signing_input.encode(), BANK.key)
    return f"{signing_input}.{b64(signature)}"


def hmac_with(secret: bytes, now: float) -> str:
    signing_input = f"{segment({'alg': 'HS256', 'kid': BANK.kid})}.{segment(claims(now))}".encode()
    return f"{signing_input.decode()}.{b64(hmac.new(secret, signing_input, hashlib.sha256).digest())}"


def _pem() -> bytes:
    return BANK.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


FORGERIES: dict[str, Forge] = {
    "alg none": lambda now: f"{segment({'alg': 'none', 'kid': BANK.kid})}.{segment(claims(now))}.",
    "alg None spelled": lambda now: f"{segment({'alg': 'None', 'kid': BANK.kid})}.{segment(claims(now))}.",
    "HS256 keyed with the PEM": lambda now: hmac_with(_pem(), now),
    "HS256 keyed with the JWK": lambda now: hmac_with(json.dumps(BANK.jwk).encode(), now),
    "RS256 on an EC key": lambda now: hand_signed(now, {"alg": "RS256", "kid": BANK.kid}),
    "jwk in the header": lambda now: OTHER_BANK.assertion("bank", now=now, header={"jwk": OTHER_BANK.jwk}),
    "jku in the header": lambda now: hand_signed(
        now, {"alg": "ES256", "kid": BANK.kid, "jku": "https://evil/j"}
    ),
    "x5u in the header": lambda now: hand_signed(
        now, {"alg": "ES256", "kid": BANK.kid, "x5u": "https://evil/c"}
    ),
    "x5c in the header": lambda now: hand_signed(now, {"alg": "ES256", "kid": BANK.kid, "x5c": ["MIIB"]}),
    "crit in the header": lambda now: hand_signed(
        now, {"alg": "ES256", "kid": BANK.kid, "crit": ["exp"], "exp": 1}
    ),
    # RFC 7797: no reading of the payload segment other than base64url, whatever b64 says.
    "b64 false in the header": lambda now: hand_signed(now, {"alg": "ES256", "kid": BANK.kid, "b64": False}),
    "b64 true in the header": lambda now: hand_signed(now, {"alg": "ES256", "kid": BANK.kid, "b64": True}),
    "typ of an access token": lambda now: hand_signed(
        now, {"alg": "ES256", "kid": BANK.kid, "typ": "at+jwt"}
    ),
    "psychic signature": lambda now: (
        f"{segment({'alg': 'ES256', 'kid': BANK.kid})}.{segment(claims(now))}." + b64(bytes(64))
    ),
    "another client's key": lambda now: OTHER_BANK.assertion("bank", now=now, header={"kid": BANK.kid}),
    "kid of another client": lambda now: OTHER_BANK.assertion("bank", now=now),
    "unknown kid": lambda now: BANK.assertion("bank", now=now, header={"kid": "nope"}),
    "aud array with us": lambda now: BANK.assertion("bank", now=now, aud=[ISSUER]),
    "aud array naming another party": lambda now: BANK.assertion(
        "bank", now=now, aud=[ISSUER, "https://as.evil"]
    ),
    "aud of another server": lambda now: BANK.assertion("bank", now=now, aud="https://as.example.org"),
    "aud token endpoint (setting off)": lambda now: BANK.assertion("bank", now=now, aud=ISSUER + TOKENS),
    "no aud": lambda now: BANK.assertion("bank", now=now, aud=None),
    "expired": lambda now: BANK.assertion("bank", now=now - 400, lifetime=300),
    "exp far in the future": lambda now: BANK.assertion("bank", now=now, lifetime=3600),
    "no exp": lambda now: BANK.assertion("bank", now=now, exp=None),
    "exp as a string": lambda now: BANK.assertion("bank", now=now, exp=str(int(now) + 60)),
    "iat in the future": lambda now: BANK.assertion("bank", now=now, iat=int(now) + 120),
    "nbf in the future": lambda now: BANK.assertion("bank", now=now, nbf=int(now) + 120),
    "no jti": lambda now: BANK.assertion("bank", now=now, jti=None),
    "iss differs from sub": lambda now: BANK.assertion("bank", now=now, iss="other-bank"),
    "sub of another client": lambda now: BANK.assertion("other-bank", now=now),
    "sub of a secret client": lambda now: BANK.assertion("testclient", now=now),
    "sub of an unknown client": lambda now: BANK.assertion("nobody", now=now),
    "duplicate claim names": lambda now: hand_signed(
        now,
        {"alg": "ES256", "kid": BANK.kid},
        json.dumps(claims(now)).replace('"aud"', '"aud": "x", "aud"').encode(),
    ),
    "oversized": lambda now: BANK.assertion("bank", now=now, pad="x" * 9000),
    "not a JWS": lambda now: "not.a.jws!",
}


@pytest.fixture
def http(make_app: MakeApp) -> testing.TestClient:
    return make_app(clients=(key_client("bank", BANK.jwks()), key_client("other-bank", OTHER_BANK.jwks())))


def test_the_genuine_assertion_passes(http: testing.TestClient, clock: Clock) -> None:
    assert (
        call(http, TOKENS, params(BANK.assertion("bank", now=clock.now), **CC), auth=None).status_code == 200
    )


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_every_forgery_gets_the_unknown_client_answer(
    http: testing.TestClient, clock: Clock, store: Any, name: str
) -> None:
    unknown = call(http, TOKENS, params(BANK.assertion("nobody", now=clock.now), **CC), auth=None)
    before = snapshot(store)
    result = call(http, TOKENS, params(FORGERIES[name](clock.now), **CC), auth=None)
    assert_clean_error(result, 401, "invalid_client")
    assert (
        result.json == unknown.json
        and result.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]
    )
    assert snapshot(store) == before  # a refused assertion spends no jti


def test_a_replayed_assertion_is_refused_everywhere(http: testing.TestClient, clock: Clock) -> None:
    assertion = BANK.assertion("bank", now=clock.now)
    assert call(http, TOKENS, params(assertion, **CC), auth=None).status_code == 200
    for path in (TOKENS, "/api/v1/introspect", "/api/v1/revoke"):
        again = call(http, path, params(assertion, **CC, token="x"), auth=None)
        assert_clean_error(again, 401, "invalid_client")


def test_a_fapi2_client_never_accepts_the_token_endpoint_audience(make_app: MakeApp, clock: Clock) -> None:
    fapi = key_client(
        "bank", BANK.jwks(), profile="fapi2", grant_types=["authorization_code", "client_credentials"]
    )
    http = make_app(clients=(fapi,), accept_token_endpoint_audience=True)
    result = call(
        http, TOKENS, params(BANK.assertion("bank", now=clock.now, aud=ISSUER + TOKENS), **CC), auth=None
    )
    assert_clean_error(result, 401, "invalid_client")


def test_a_kept_parse_never_lets_another_signature_through(http: testing.TestClient, clock: Clock) -> None:
    # The parse of an assertion is kept for the request that reads its sub and then checks it;
    # every presentation is verified again: a genuine one first, then its header and claims
    # under another key's signature, or under a truncated one, are refused.
    genuine = BANK.assertion("bank", now=clock.now, jti="kept-1")
    head, body, _ = genuine.split(".")
    under_other_key = OTHER_BANK.assertion("bank", now=clock.now, jti="kept-1").split(".")[2]
    assert call(http, TOKENS, params(genuine, **CC), auth=None).status_code == 200
    fresh = BANK.assertion("bank", now=clock.now, jti="kept-2")
    fresh_head, fresh_body, fresh_signature = fresh.split(".")
    for signature in (under_other_key, fresh_signature[:-8], genuine.split(".")[2]):
        forged = f"{fresh_head}.{fresh_body}.{signature}"
        assert_clean_error(call(http, TOKENS, params(forged, **CC), auth=None), 401, "invalid_client")
    assert head == fresh_head and body != fresh_body
    assert call(http, TOKENS, params(fresh, **CC), auth=None).status_code == 200


def test_the_kept_parse_is_read_only() -> None:
    from jwtauth.accounts.assertions import parts

    header, claims = parts(BANK.assertion("bank", now=1_900_000_000))
    with pytest.raises(TypeError):
        header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(TypeError):
        claims["sub"] = "testclient"  # type: ignore[index]
