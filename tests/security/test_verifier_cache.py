"""The key cache of jwtauth.verify as an attack surface: how long a withdrawn key stays trusted
(Cache-Control max-age minus Age, RFC 9111 §4.2.3), revalidation with If-None-Match and 304
(RFC 9110 §13.1.2), an unknown kid that must reach past intermediary caches (no-cache, RFC 9111
§5.2.1.4), and floods of random kids that must not turn into fetches."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from falcon import testing

from jwtauth.verify import InvalidToken, NotModified, Verifier, VerifierUnavailable, urllib_fetch
from tests.helpers import API, ISSUER, tokens_of
from tests.helpers import login as password_login

JWKS_URI = ISSUER + "/jwks"
NOW = 1_900_000_000.0


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Origin:
    """A JWKS origin: its keys, response headers, and every request it saw (with headers)."""

    keys: list[tuple[str, ec.EllipticCurvePrivateKey]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=lambda: {"Cache-Control": "max-age=300"})
    etag: str = '"v1"'
    requests: list[dict[str, str]] = field(default_factory=list)

    def add_key(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        pair = (secrets.token_urlsafe(8), ec.generate_private_key(ec.SECP256R1()))
        self.keys.append(pair)
        self.etag = f'"v{len(self.keys)}-{secrets.token_hex(2)}"'
        return pair

    def document(self) -> bytes:
        out = []
        for kid, key in self.keys:
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
        return json.dumps({"keys": out}).encode()

    def __call__(
        self, url: str, *, headers: Mapping[str, str] | None = None
    ) -> tuple[bytes, Mapping[str, str]]:
        assert url == JWKS_URI
        sent = dict(headers or {})
        self.requests.append(sent)
        response = {**self.headers, "ETag": self.etag}
        if sent.get("If-None-Match") == self.etag:
            raise NotModified(response)
        return self.document(), response


def sign(kid: str, key: ec.EllipticCurvePrivateKey, now: float = NOW) -> str:
    claims = {
        "iss": ISSUER,
        "sub": "u",
        "aud": API,
        "exp": int(now) + 600,
        "iat": int(now),
        "jti": secrets.token_urlsafe(6),
        "client_id": "c",
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})


def verifier_for(origin: Any, clock: Clock) -> Verifier:
    return Verifier(issuer=ISSUER, audience=API, jwks_uri=JWKS_URI, fetch=origin, clock=clock)


# --- Age: a cached copy has less life left (RFC 9111 §4.2.3) -------------------------------------------


@pytest.mark.parametrize(
    ("max_age", "age", "fresh_for"), [(300, 200, 100), (3600, 3000, 600), (300, 290, 60), (300, 900, 60)]
)
def test_age_shortens_how_long_keys_are_trusted(max_age: int, age: int, fresh_for: int) -> None:
    """A CDN that held the JWKS for `age` seconds leaves max-age - age; never below min_max_age."""
    origin, clock = Origin(headers={"Cache-Control": f"public, max-age={max_age}", "Age": str(age)}), Clock()
    kid, key = origin.add_key()
    verifier = verifier_for(origin, clock)
    verifier.verify(sign(kid, key))
    clock.now += fresh_for - 1
    verifier.verify(sign(kid, key, clock.now))
    assert len(origin.requests) == 1
    clock.now += 2
    verifier.verify(sign(kid, key, clock.now))
    assert len(origin.requests) == 2


@pytest.mark.parametrize("age", ["abc", "-5", "1.5", "10, 20", ""])
def test_a_malformed_age_is_ignored(age: str) -> None:
    origin, clock = Origin(headers={"Cache-Control": "max-age=300", "Age": age}), Clock()
    kid, key = origin.add_key()
    verifier = verifier_for(origin, clock)
    verifier.verify(sign(kid, key))
    clock.now += 299
    verifier.verify(sign(kid, key, clock.now))
    assert len(origin.requests) == 1


# --- revalidation: If-None-Match and 304 (RFC 9110 §13.1.2) ----------------------------------------------


def test_a_refresh_revalidates_with_the_etag_and_a_304_keeps_the_keys() -> None:
    origin, clock = Origin(), Clock()
    kid, key = origin.add_key()
    verifier = verifier_for(origin, clock)
    verifier.verify(sign(kid, key))
    assert "If-None-Match" not in origin.requests[0]
    clock.now += 301
    verifier.verify(sign(kid, key, clock.now))  # stale: revalidated, 304, same keys
    assert origin.requests[1]["If-None-Match"] == origin.etag
    clock.now += 299  # the 304's max-age counts from the revalidation
    verifier.verify(sign(kid, key, clock.now))
    assert len(origin.requests) == 2


def test_a_changed_set_after_revalidation_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    origin, clock = Origin(), Clock()
    old_kid, old_key = origin.add_key()
    verifier = verifier_for(origin, clock)
    verifier.verify(sign(old_kid, old_key))
    origin.keys.clear()
    new_kid, new_key = origin.add_key()  # the old key is withdrawn, the ETag changes
    clock.now += 301
    verifier.verify(sign(new_kid, new_key, clock.now))
    with pytest.raises(InvalidToken):
        verifier.verify(sign(old_kid, old_key, clock.now))


def test_a_304_without_a_cached_set_is_unavailable_not_trusted() -> None:
    origin, clock = Origin(), Clock()
    kid, key = origin.add_key()

    def always_304(url: str, *, headers: Mapping[str, str] | None = None) -> tuple[bytes, Mapping[str, str]]:
        raise NotModified({"Cache-Control": "max-age=300"})

    with pytest.raises(VerifierUnavailable):
        verifier_for(always_304, clock).verify(sign(kid, key))


# --- an unknown kid must reach the origin (RFC 9111 §5.2.1.4) -------------------------------------


def test_an_unknown_kid_refetch_asks_caches_to_revalidate() -> None:
    origin, clock = Origin(), Clock()
    kid, key = origin.add_key()
    verifier = verifier_for(origin, clock)
    verifier.verify(sign(kid, key))
    assert "Cache-Control" not in origin.requests[0]
    new_kid, new_key = origin.add_key()  # rotated in: published before it signs
    clock.now += 11  # past refetch_interval, well within max-age
    verifier.verify(sign(new_kid, new_key, clock.now))
    assert origin.requests[1].get("Cache-Control") == "no-cache"


def test_random_kids_cost_one_fetch_per_interval() -> None:
    origin, clock = Origin(), Clock()
    kid, key = origin.add_key()
    verifier = verifier_for(origin, clock)
    verifier.verify(sign(kid, key))
    for _ in range(200):
        with pytest.raises(InvalidToken):
            verifier.verify(sign(secrets.token_urlsafe(8), key))
    assert len(origin.requests) == 1  # within refetch_interval of the first fetch: none at all
    clock.now += verifier.refetch_interval
    for _ in range(200):
        with pytest.raises(InvalidToken):
            verifier.verify(sign(secrets.token_urlsafe(8), key, clock.now))
    assert len(origin.requests) == 2  # one refetch per interval, however many kids


def test_a_single_argument_fetch_still_works() -> None:
    """Compatibility: a fetch written for the old seam gets no headers and no TypeError."""
    origin, clock = Origin(), Clock()
    kid, key = origin.add_key()
    calls: list[str] = []

    def legacy(url: str) -> tuple[bytes, Mapping[str, str]]:
        calls.append(url)
        return origin.document(), {"Cache-Control": "max-age=300", "ETag": origin.etag}

    verifier = verifier_for(legacy, clock)
    verifier.verify(sign(kid, key))
    clock.now += 301
    verifier.verify(sign(kid, key, clock.now))
    assert calls == [JWKS_URI, JWKS_URI]


# --- against our own server -------------------------------------------------------------------------


def test_our_jwks_endpoint_and_the_verifier_agree_on_304(http: testing.TestClient) -> None:
    seen: list[int] = []

    def through_app(url: str, *, headers: Mapping[str, str] | None = None) -> tuple[bytes, Mapping[str, str]]:
        result = http.simulate_get("/jwks", headers=dict(headers or {}))
        seen.append(result.status_code)
        if result.status_code == 304:
            raise NotModified(dict(result.headers))
        return result.content, dict(result.headers)

    clock = Clock()
    access, _ = tokens_of(password_login(http))
    verifier = Verifier(
        issuer=ISSUER, audience=API, jwks_uri=JWKS_URI, fetch=through_app, clock=clock, leeway=10**9
    )
    verifier.verify(access)
    clock.now += 301
    verifier.verify(access)
    assert seen == [200, 304]


@pytest.mark.e2e
def test_urllib_fetch_sends_request_headers_and_reports_304(serve: Any) -> None:
    with serve() as server:
        url = server.base + "/jwks"
        body, headers = urllib_fetch(url)
        assert json.loads(body)["keys"]
        etag = {k.lower(): v for k, v in headers.items()}["etag"]
        with pytest.raises(NotModified) as info:
            urllib_fetch(url, headers={"If-None-Match": etag, "Cache-Control": "no-cache"})
        assert {k.lower(): v for k, v in info.value.headers.items()}["etag"] == etag
        body_again, _ = urllib_fetch(url, headers={"If-None-Match": '"other"'})
        assert body_again == body
