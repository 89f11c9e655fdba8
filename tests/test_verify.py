"""Tests for jwtauth.verify: the offline access-token verifier and its Falcon integration."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import falcon
import falcon.testing
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from jwtauth.verify import (
    BearerAuth,
    InvalidToken,
    RequireBearer,
    Verifier,
    VerifierUnavailable,
    token_scopes,
    urllib_fetch,
)

ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
JWKS_URI = "https://auth.example.com/jwks"
EVIL_URL = "https://evil.example/jwks"
NOW = 1_700_000_000.0
ALGS = ("ES256", "RS256", "PS256", "EdDSA")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


# --- fakes and helpers ----------------------------------------------------------------


@dataclass
class FakeClock:
    """Stand in for time.time; advanced by hand."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeFetch:
    """Serve canned responses by URL and record every URL asked for."""

    routes: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    delay: float = 0.0

    def serve(self, url: str, doc: object, headers: Mapping[str, str] | None = None) -> None:
        self.routes[url] = (json.dumps(doc).encode(), dict(headers or {}))

    def count(self, url: str) -> int:
        return self.calls.count(url)

    def __call__(self, url: str) -> tuple[bytes, Mapping[str, str]]:
        self.calls.append(url)
        if self.delay:
            time.sleep(self.delay)  # widens the race window in the concurrency test
        if url not in self.routes:
            raise OSError(f"404 {url}")
        return self.routes[url]


@dataclass(frozen=True)
class Key:
    """A signing key made for one test run, with its public JWK."""

    kid: str
    alg: str
    private: PrivateKey
    jwk: dict[str, Any]

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _generate(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def make_key(alg: str, kid: str = "") -> Key:
    """Return a key pair for ``alg``, the same one for the same (alg, kid) all session."""
    return _cached_key(alg, kid or f"{alg.lower()}-1")


@cache  # RSA generation is slow; keys are immutable, so sharing them is safe
def _cached_key(alg: str, kid: str) -> Key:
    private = _generate(alg)
    jwk = get_default_algorithms()[alg].to_jwk(private.public_key(), as_dict=True)
    return Key(kid, alg, private, {**jwk, "kid": kid, "alg": alg, "use": "sig"})


def claims(**overrides: Any) -> dict[str, Any]:
    """Return valid access-token claims at NOW; an override of None drops the claim."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": AUDIENCE,
        "exp": int(NOW) + 300,
        "iat": int(NOW),
        "jti": "jti-1",
        "client_id": "testclient",
        "scope": "read write",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(key: Key, payload: dict[str, Any] | None = None, /, **header: Any) -> str:
    """Sign a token with ``key``; header overrides of None drop the member.

    Signs with PyJWS rather than jwt.encode, so any payload (also an invalid one) is signed as is.
    """
    fields = {"typ": "at+jwt", "kid": key.kid, **header}
    headers = {name: value for name, value in fields.items() if value is not None}
    if "typ" not in headers:
        headers["typ"] = None  # PyJWS drops a null typ instead of defaulting to "JWT"
    body = json.dumps(claims() if payload is None else payload).encode()
    return jwt.PyJWS().encode(body, key.private, algorithm=key.alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None = None) -> str:
    """Build a token by hand; HMAC-SHA256 it with ``secret`` or leave it unsigned."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def jwks(*entries: object) -> dict[str, Any]:
    """Return a JWK Set of the public JWKs of Keys and of other entries as they are."""
    return {"keys": [e.jwk if isinstance(e, Key) else e for e in entries]}


@dataclass
class World:
    """A verifier wired to a fake issuer."""

    clock: FakeClock
    fetch: FakeFetch
    verifier: Verifier

    def reject(self, token: str) -> str:
        with pytest.raises(InvalidToken) as caught:
            self.verifier.verify(token)
        return caught.value.reason


def make_world(*entries: object, headers: Mapping[str, str] | None = None, **options: Any) -> World:
    clock, fetch = FakeClock(), FakeFetch()
    fetch.serve(JWKS_URI, jwks(*(entries or [make_key(a) for a in ALGS])), headers)
    settings: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_uri": JWKS_URI}
    settings.update(options)
    return World(clock, fetch, Verifier(fetch=fetch, clock=clock, **settings))


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def es() -> Key:
    return make_key("ES256")


# --- valid tokens -----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_valid_token_for_each_algorithm(world: World, alg: str) -> None:
    token = mint(make_key(alg), claims(sub=f"user-{alg}"))

    result = world.verifier.verify(token)

    assert result["sub"] == f"user-{alg}"
    assert result["client_id"] == "testclient"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_accepts_media_type_forms_case_insensitively(world: World, es: Key, typ: str) -> None:
    assert world.verifier.verify(mint(es, typ=typ))["jti"] == "jti-1"


def test_audience_may_be_one_of_a_list(world: World, es: Key) -> None:
    token = mint(es, claims(aud=["https://other.example", AUDIENCE]))

    assert world.verifier.verify(token)["aud"] == ["https://other.example", AUDIENCE]


def test_leeway_tolerates_small_clock_skew(world: World, es: Key) -> None:
    token = mint(es, claims(exp=int(NOW) - 20, iat=int(NOW) + 20, nbf=int(NOW) + 20))

    assert world.verifier.verify(token)["sub"] == "user-1"


def test_jwk_without_alg_is_pinned_by_its_key_type(es: Key) -> None:
    bare = {k: v for k, v in es.jwk.items() if k != "alg"}
    w = make_world(bare)

    assert w.verifier.verify(mint(es))["sub"] == "user-1"


def test_token_scopes_splits_the_scope_claim() -> None:
    assert token_scopes({"scope": "read  write"}) == {"read", "write"}
    assert token_scopes({}) == frozenset()


# --- forged and invalid tokens ----------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_unsigned_tokens_are_rejected(world: World, es: Key, alg: str) -> None:
    token = forge({"alg": alg, "typ": "at+jwt", "kid": es.kid}, claims())

    assert world.reject(token) == "unsigned token"


@pytest.mark.parametrize("alg", ALGS)
def test_hs256_signed_with_the_public_pem_is_rejected(world: World, alg: str) -> None:
    key = make_key(alg)
    token = forge({"alg": "HS256", "typ": "at+jwt", "kid": key.kid}, claims(), key.public_pem())

    assert world.reject(token) == "algorithm not allowed"


@pytest.mark.parametrize(
    "serialise",
    [json.dumps, lambda jwk: json.dumps(jwk, separators=(",", ":"), sort_keys=True)],
)
def test_hs256_signed_with_the_jwk_json_is_rejected(
    world: World, es: Key, serialise: Callable[[dict[str, Any]], str]
) -> None:
    secret = serialise(es.jwk).encode()
    token = forge({"alg": "HS256", "typ": "at+jwt", "kid": es.kid}, claims(), secret)

    assert world.reject(token) == "algorithm not allowed"


@pytest.mark.parametrize(
    ("alg", "reason"),
    [
        ("HS384", "algorithm not allowed"),
        ("HS512", "algorithm not allowed"),
        ("ES384", "algorithm not allowed"),
        ("RS512", "algorithm not allowed"),
        ("es256", "algorithm not allowed"),
        ("", "algorithm not allowed"),
        (5, "malformed token"),
        (None, "malformed token"),
    ],
)
def test_algorithms_off_the_allow_list_are_rejected(
    world: World, es: Key, alg: object, reason: str
) -> None:
    token = forge({"alg": alg, "typ": "at+jwt", "kid": es.kid}, claims(), b"x")

    assert world.reject(token) == reason
    assert world.fetch.calls == []


def test_header_alg_must_equal_the_keys_alg() -> None:
    rs = make_key("RS256")
    ps_with_rs_kid = Key(rs.kid, "PS256", rs.private, rs.jwk)
    w = make_world(rs)

    assert w.reject(mint(ps_with_rs_kid)) == "algorithm does not match key"


def test_signature_by_another_key_is_rejected(world: World, es: Key) -> None:
    impostor = Key(es.kid, "ES256", ec.generate_private_key(ec.SECP256R1()), es.jwk)

    assert world.reject(mint(impostor)) == "bad signature"


def test_tampered_payload_is_rejected(world: World, es: Key) -> None:
    header, _, signature = mint(es).split(".")
    payload = b64(json.dumps(claims(sub="admin")).encode())

    assert world.reject(f"{header}.{payload}.{signature}") == "bad signature"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt", "at+jwt2", " at+jwt", 1, None])
def test_wrong_or_missing_typ_is_rejected(world: World, es: Key, typ: object) -> None:
    token = mint(es, typ=typ)
    assert ("typ" in jwt.get_unverified_header(token)) is (typ is not None)

    assert world.reject(token) == "not an access token"


@pytest.mark.parametrize(
    "iss",
    [
        ISSUER + "/",
        ISSUER + "x",
        ISSUER[:-1],
        ISSUER + ".evil.com",
        "https://evil.com/" + ISSUER,
        "http://auth.example.com",
        ISSUER.upper(),
        " " + ISSUER,
    ],
)
def test_wrong_issuer_is_rejected(world: World, es: Key, iss: str) -> None:
    assert world.reject(mint(es, claims(iss=iss))) == "wrong issuer"


def test_non_string_issuer_is_rejected(world: World, es: Key) -> None:
    assert world.reject(mint(es, claims(iss=[ISSUER]))) == "invalid claim: iss"


@pytest.mark.parametrize(
    "aud", [AUDIENCE + "/", "https://api.example.co", ["https://other.example"], AUDIENCE.upper()]
)
def test_wrong_audience_is_rejected(world: World, es: Key, aud: object) -> None:
    assert world.reject(mint(es, claims(aud=aud))) == "wrong audience"


@pytest.mark.parametrize("aud", [[], [AUDIENCE, 3], {"aud": AUDIENCE}, 7])
def test_malformed_audience_is_rejected(world: World, es: Key, aud: object) -> None:
    assert world.reject(mint(es, claims(aud=aud))) == "invalid claim: aud"


def test_expired_token_is_rejected(world: World, es: Key) -> None:
    token = mint(es, claims(exp=int(NOW) + 60))
    world.clock.advance(60 + 30)  # exactly at exp + leeway: RFC 7519 §4.1.4 says "before"

    assert world.reject(token) == "token expired"


def test_not_yet_valid_token_is_rejected(world: World, es: Key) -> None:
    assert world.reject(mint(es, claims(nbf=int(NOW) + 31))) == "token not yet valid"


def test_token_issued_in_the_future_is_rejected(world: World, es: Key) -> None:
    assert world.reject(mint(es, claims(iat=int(NOW) + 31))) == "token issued in the future"


@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", ["1700000000", True, [], {"t": 1}])
def test_non_numeric_dates_are_rejected(world: World, es: Key, name: str, value: object) -> None:
    assert world.reject(mint(es, claims(**{name: value}))) == f"invalid claim: {name}"


@pytest.mark.parametrize("name", ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"])
def test_missing_required_claim_is_rejected(world: World, es: Key, name: str) -> None:
    assert world.reject(mint(es, claims(**{name: None}))) == f"missing claim: {name}"


def test_non_string_scope_is_rejected(world: World, es: Key) -> None:
    assert world.reject(mint(es, claims(scope=["read"]))) == "invalid claim: scope"


@pytest.mark.parametrize("member", ["jku", "x5u"])
def test_key_urls_in_the_header_are_refused_and_never_fetched(member: str) -> None:
    es, attacker = make_key("ES256"), make_key("ES256", "attacker")
    w = make_world(es)
    w.fetch.serve(EVIL_URL, jwks(Key(es.kid, "ES256", attacker.private, attacker.jwk)))

    for signer in (es, Key(es.kid, "ES256", attacker.private, attacker.jwk)):
        assert w.reject(mint(signer, **{member: EVIL_URL})) == "token names its own key"
    assert EVIL_URL not in w.fetch.calls


def test_embedded_jwk_is_refused(es: Key) -> None:
    attacker = make_key("ES256", "attacker")
    w = make_world(es)
    token = mint(Key(es.kid, "ES256", attacker.private, es.jwk), jwk=attacker.jwk)

    assert w.reject(token) == "token names its own key"
    assert w.fetch.calls == []


def test_embedded_certificate_chain_is_refused(world: World, es: Key) -> None:
    token = mint(es, x5c=[b64(b"not really a certificate")])

    assert world.reject(token) == "token names its own key"
    assert world.fetch.calls == []


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "x"])
def test_crit_header_is_refused(world: World, es: Key, crit: object) -> None:
    token = forge({"alg": "ES256", "typ": "at+jwt", "kid": es.kid, "crit": crit}, claims(), b"x")

    assert world.reject(token) == "unsupported critical header"


@pytest.mark.parametrize("kid", [None, "", 7, ["es256-1"], "k" * 257])
def test_key_id_is_required(world: World, es: Key, kid: object) -> None:
    header = {"alg": "ES256", "typ": "at+jwt"} | ({} if kid is None else {"kid": kid})
    token = forge(header, claims(), b"x")

    assert world.reject(token) == "missing key id"
    assert world.fetch.calls == []


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        "eyJhb.e30.sig",  # a length that base64 cannot have
        b64(b"not json") + ".e30.sig",
        b64(b"[1, 2]") + ".e30.sig",
        b64(b'{"alg": "ES256", "alg": "none"}') + ".e30.sig",  # RFC 7515 §5.2: duplicates
        b64(b'{"alg": NaN}') + ".e30.sig",
        "é.e30.sig",
    ],
)
def test_malformed_tokens_are_rejected(world: World, token: str) -> None:
    assert world.reject(token) == "malformed token"
    assert world.fetch.calls == []


def test_malformed_payload_behind_a_good_header_is_rejected(world: World, es: Key) -> None:
    header = b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": es.kid}).encode())

    assert world.reject(f"{header}.!!!.sig") == "malformed token"


def test_non_string_token_is_rejected(world: World) -> None:
    with pytest.raises(InvalidToken, match="malformed token"):
        world.verifier.verify(b"a.b.c")  # type: ignore[arg-type]


def test_huge_token_is_rejected_before_parsing(world: World, es: Key) -> None:
    token = mint(es, claims(padding="x" * 9000))

    assert world.reject(token) == "token too large"
    assert world.reject("." * 9000) == "token too large"
    assert world.fetch.calls == []


# --- the JWK Set: what is used, cached and refetched ----------------------------------


def _private_jwk(key: Key) -> dict[str, Any]:
    jwk = get_default_algorithms()[key.alg].to_jwk(key.private, as_dict=True)
    return {**jwk, "kid": key.kid, "alg": key.alg}


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(lambda k: _private_jwk(k), id="private-members"),
        pytest.param(lambda k: {**k.jwk, "d": "AAAA"}, id="stray-d"),
        pytest.param(lambda k: {**k.jwk, "use": "enc"}, id="use-enc"),
        pytest.param(lambda k: {**k.jwk, "key_ops": ["encrypt"]}, id="key-ops"),
        pytest.param(lambda k: {**k.jwk, "alg": "ES384"}, id="alg-off-list"),
        pytest.param(lambda k: {**k.jwk, "alg": "RS256"}, id="alg-kty-mismatch"),
        pytest.param(lambda k: {**k.jwk, "kid": None}, id="no-kid"),
    ],
)
def test_unusable_jwks_entries_are_ignored(entry: Callable[[Key], dict[str, Any]]) -> None:
    key = make_key("ES256", "ignored")
    w = make_world(entry(key))

    assert w.reject(mint(key)) == "unknown key id"


def test_symmetric_jwk_is_ignored() -> None:
    secret = b"s" * 32
    oct_jwk = {"kty": "oct", "kid": "sym", "k": b64(secret)}
    w = make_world(oct_jwk, {**oct_jwk, "kid": "sym-es", "alg": "ES256"})

    hs = forge({"alg": "HS256", "typ": "at+jwt", "kid": "sym"}, claims(), secret)
    es_kid = forge({"alg": "ES256", "typ": "at+jwt", "kid": "sym-es"}, claims(), secret)

    assert w.reject(hs) == "algorithm not allowed"
    assert w.reject(es_kid) == "unknown key id"


def test_duplicate_kids_are_ambiguous_and_ignored() -> None:
    first, second = make_key("ES256", "dup"), make_key("ES256", "dup-2")
    w = make_world(first, {**second.jwk, "kid": "dup"})

    assert w.reject(mint(first)) == "unknown key id"


def test_short_rsa_keys_are_ignored() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose
    jwk = get_default_algorithms()["RS256"].to_jwk(weak.public_key(), as_dict=True)
    key = Key("weak", "RS256", weak, {**jwk, "kid": "weak", "alg": "RS256"})
    w = make_world(key)
    with pytest.warns(jwt.InsecureKeyLengthWarning):  # PyJWT warns the signer too
        token = mint(key)

    assert w.reject(token) == "unknown key id"


def test_ignored_entries_do_not_spoil_the_rest(es: Key) -> None:
    w = make_world({"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}, "junk", es.jwk)

    assert w.verifier.verify(mint(es))["sub"] == "user-1"


def test_nothing_is_fetched_until_the_first_verify(es: Key) -> None:
    w = make_world(es)
    assert w.fetch.calls == []

    w.verifier.verify(mint(es))

    assert w.fetch.calls == [JWKS_URI]


def test_unknown_kid_refetches_once_then_waits_out_the_interval(es: Key) -> None:
    w = make_world(es)
    w.verifier.verify(mint(es))
    w.clock.advance(10)  # the warm-up fetch itself counts against the interval
    stranger = make_key("ES256", "stranger")

    assert w.reject(mint(stranger)) == "unknown key id"
    assert w.fetch.count(JWKS_URI) == 2
    for n in range(20):  # a kid spray within the interval costs the issuer nothing
        assert w.reject(mint(Key(f"random-{n}", "ES256", stranger.private, stranger.jwk))) == (
            "unknown key id"
        )
    w.clock.advance(9.9)
    assert w.reject(mint(stranger)) == "unknown key id"
    assert w.fetch.count(JWKS_URI) == 2

    w.clock.advance(0.1)
    assert w.reject(mint(stranger)) == "unknown key id"
    assert w.fetch.count(JWKS_URI) == 3


def test_refetch_interval_is_configurable(es: Key) -> None:
    w = make_world(es, refetch_interval=2.0)
    stranger = make_key("ES256", "stranger")
    w.reject(mint(stranger))
    w.clock.advance(2.0)

    w.reject(mint(stranger))

    assert w.fetch.count(JWKS_URI) == 2


def test_unknown_kid_refetch_picks_up_a_newly_published_key(es: Key) -> None:
    w = make_world(es)
    w.verifier.verify(mint(es))
    rotated = make_key("EdDSA", "rotated")
    w.fetch.serve(JWKS_URI, jwks(es, rotated), {"Cache-Control": "max-age=600"})
    w.clock.advance(10)

    assert w.verifier.verify(mint(rotated))["sub"] == "user-1"
    assert w.fetch.count(JWKS_URI) == 2


def test_cache_honours_max_age(es: Key) -> None:
    w = make_world(es, headers={"Cache-Control": "public, max-age=600"})
    token = mint(es, claims(exp=int(NOW) + 3600))
    w.verifier.verify(token)

    w.clock.advance(599)
    w.verifier.verify(token)
    assert w.fetch.count(JWKS_URI) == 1

    w.clock.advance(1)
    w.verifier.verify(token)
    assert w.fetch.count(JWKS_URI) == 2


def test_removed_key_stops_verifying_after_max_age(es: Key) -> None:
    w = make_world(es, headers={"cache-control": "max-age=120"})
    token = mint(es, claims(exp=int(NOW) + 3600))
    w.verifier.verify(token)
    w.fetch.serve(JWKS_URI, jwks(make_key("EdDSA")))

    w.clock.advance(120)

    assert w.reject(token) == "unknown key id"


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [
        (None, 300.0),  # default
        ("max-age=1", 60.0),  # clamped up: "no-cache" must not mean a fetch per request
        ("no-store", 60.0),
        ('max-age="90"', 90.0),
        ("max-age=999999999", 86400.0),  # clamped down
        ("max-age=soon", 300.0),
    ],
)
def test_cache_lifetime_is_clamped(es: Key, cache_control: str | None, fresh_for: float) -> None:
    headers = {"Cache-Control": cache_control} if cache_control else {}
    w = make_world(es, headers=headers)
    token = mint(es, claims(exp=int(NOW) + 100_000, iat=int(NOW)))
    w.verifier.verify(token)

    w.clock.advance(fresh_for - 0.5)
    w.verifier.verify(token)
    assert w.fetch.count(JWKS_URI) == 1
    w.clock.advance(0.5)
    w.verifier.verify(token)
    assert w.fetch.count(JWKS_URI) == 2


def test_fetch_failure_without_keys_is_unavailable_and_throttled(es: Key) -> None:
    w = make_world(es)
    del w.fetch.routes[JWKS_URI]

    with pytest.raises(VerifierUnavailable) as caught:
        w.verifier.verify(mint(es))
    with pytest.raises(VerifierUnavailable):
        w.verifier.verify(mint(es))

    assert caught.value.reason == "signing keys unavailable"
    assert isinstance(caught.value, InvalidToken)  # callers catching only InvalidToken fail closed
    assert w.fetch.count(JWKS_URI) == 1


def test_verifier_recovers_once_the_jwks_is_back(es: Key) -> None:
    w = make_world(es)
    body = w.fetch.routes.pop(JWKS_URI)
    with pytest.raises(VerifierUnavailable):
        w.verifier.verify(mint(es))

    w.fetch.routes[JWKS_URI] = body
    w.clock.advance(10)

    assert w.verifier.verify(mint(es))["sub"] == "user-1"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"keys": "nope"}', b'{"other": []}'])
def test_unparseable_jwks_is_unavailable(es: Key, body: bytes) -> None:
    w = make_world(es)
    w.fetch.routes[JWKS_URI] = (body, {})

    with pytest.raises(VerifierUnavailable):
        w.verifier.verify(mint(es))


def test_stale_keys_serve_while_the_issuer_is_down(es: Key) -> None:
    w = make_world(es, headers={"Cache-Control": "max-age=300"}, stale_if_error=600.0)
    token = mint(es, claims(exp=int(NOW) + 100_000))
    w.verifier.verify(token)
    del w.fetch.routes[JWKS_URI]

    w.clock.advance(300)
    assert w.verifier.verify(token)["sub"] == "user-1"
    assert w.fetch.count(JWKS_URI) == 2
    with pytest.raises(VerifierUnavailable):  # an unknown kid cannot be judged while down
        w.verifier.verify(mint(make_key("ES256", "stranger")))

    w.clock.advance(600)
    with pytest.raises(VerifierUnavailable):
        w.verifier.verify(token)


def test_concurrent_cold_start_fetches_once(es: Key) -> None:
    w = make_world(es)
    w.fetch.delay = 0.05
    token = mint(es)
    results: list[str] = []

    def worker() -> None:
        results.append(w.verifier.verify(token)["sub"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["user-1"] * 8
    assert w.fetch.count(JWKS_URI) == 1


# --- discovery ----------------------------------------------------------------------


def discovery_world(
    issuer: str = ISSUER, served: Mapping[str, dict[str, Any]] | None = None
) -> World:
    es = make_key("ES256")
    clock, fetch = FakeClock(), FakeFetch()
    fetch.serve(JWKS_URI, jwks(es))
    for url, doc in (served or {}).items():
        fetch.serve(url, doc)
    verifier = Verifier(issuer=issuer, audience=AUDIENCE, fetch=fetch, clock=clock)
    return World(clock, fetch, verifier)


OAUTH_METADATA = ISSUER + "/.well-known/oauth-authorization-server"
OIDC_METADATA = ISSUER + "/.well-known/openid-configuration"


def test_discovery_uses_rfc8414_metadata(es: Key) -> None:
    w = discovery_world(served={OAUTH_METADATA: {"issuer": ISSUER, "jwks_uri": JWKS_URI}})

    assert w.verifier.verify(mint(es))["sub"] == "user-1"
    assert w.fetch.calls == [OAUTH_METADATA, JWKS_URI]


def test_discovery_falls_back_to_openid_configuration(es: Key) -> None:
    w = discovery_world(served={OIDC_METADATA: {"issuer": ISSUER, "jwks_uri": JWKS_URI}})

    assert w.verifier.verify(mint(es))["sub"] == "user-1"
    assert w.fetch.calls == [OAUTH_METADATA, OIDC_METADATA, JWKS_URI]


def test_discovery_inserts_well_known_before_an_issuer_path(es: Key) -> None:
    issuer = ISSUER + "/tenant"
    metadata = "https://auth.example.com/.well-known/oauth-authorization-server/tenant"
    w = discovery_world(issuer, {metadata: {"issuer": issuer, "jwks_uri": JWKS_URI}})

    assert w.verifier.verify(mint(es, claims(iss=issuer)))["iss"] == issuer
    assert w.fetch.calls == [metadata, JWKS_URI]


def test_discovery_happens_once(es: Key) -> None:
    w = discovery_world(served={OAUTH_METADATA: {"issuer": ISSUER, "jwks_uri": JWKS_URI}})
    token = mint(es, claims(exp=int(NOW) + 3600))
    w.verifier.verify(token)

    w.clock.advance(300)
    w.verifier.verify(token)

    assert w.fetch.count(OAUTH_METADATA) == 1
    assert w.fetch.count(JWKS_URI) == 2


@pytest.mark.parametrize(
    "claimed", [ISSUER + "/", "https://evil.example", ISSUER.upper(), None, [ISSUER]]
)
def test_metadata_for_another_issuer_is_not_used(es: Key, claimed: object) -> None:
    w = discovery_world(served={OAUTH_METADATA: {"issuer": claimed, "jwks_uri": EVIL_URL}})
    w.fetch.serve(EVIL_URL, jwks(es))

    with pytest.raises(VerifierUnavailable):
        w.verifier.verify(mint(es))

    assert EVIL_URL not in w.fetch.calls
    assert JWKS_URI not in w.fetch.calls


def test_metadata_without_jwks_uri_is_unavailable(es: Key) -> None:
    w = discovery_world(served={OAUTH_METADATA: {"issuer": ISSUER}})

    with pytest.raises(VerifierUnavailable):
        w.verifier.verify(mint(es))
    assert w.fetch.calls == [OAUTH_METADATA]


def test_no_metadata_anywhere_is_unavailable(es: Key) -> None:
    w = discovery_world()

    with pytest.raises(VerifierUnavailable):
        w.verifier.verify(mint(es))
    assert w.fetch.calls == [OAUTH_METADATA, OIDC_METADATA]


# --- construction ---------------------------------------------------------------------


def test_audience_is_required_unless_explicitly_skipped() -> None:
    with pytest.raises(ValueError, match="audience is required"):
        Verifier(issuer=ISSUER, audience=None)
    with pytest.raises(ValueError, match="audience is required"):
        Verifier(issuer=ISSUER, audience="")
    with pytest.raises(ValueError, match="verify_audience=False would ignore it"):
        Verifier(issuer=ISSUER, audience=AUDIENCE, verify_audience=False)
    with pytest.raises(TypeError):
        Verifier(issuer=ISSUER)  # type: ignore[call-arg]


def test_skipped_audience_check_still_requires_an_aud_claim(es: Key) -> None:
    w = make_world(es, audience=None, verify_audience=False)

    assert w.verifier.verify(mint(es, claims(aud="https://anyone.example")))["sub"] == "user-1"
    assert w.reject(mint(es, claims(aud=None))) == "missing claim: aud"


@pytest.mark.parametrize(
    "options",
    [
        {"issuer": ""},
        {"refetch_interval": 0},
        {"refetch_interval": 120.0},  # longer than min_max_age
        {"min_max_age": 600.0},  # longer than default_max_age
        {"leeway": -1},
        {"max_token_bytes": 0},
    ],
)
def test_nonsensical_settings_are_refused(options: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, **options}

    with pytest.raises(ValueError):
        Verifier(**settings)


# --- the default fetcher ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://auth.example.com/jwks", "http://auth.example.com/jwks", "jwks"],
)
def test_default_fetch_refuses_insecure_urls(url: str) -> None:
    with pytest.raises(ValueError, match="refusing to fetch"):
        urllib_fetch(url)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/jwks")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"x" * 2048 if self.path == "/big" else b'{"keys": []}'
        self.send_response(200)
        self.send_header("Cache-Control", "max-age=42")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def local_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_default_fetch_returns_body_and_headers(local_server: str) -> None:
    body, headers = urllib_fetch(local_server + "/jwks")

    assert json.loads(body) == {"keys": []}
    assert headers["Cache-Control"] == "max-age=42"


def test_default_fetch_caps_the_size(local_server: str) -> None:
    with pytest.raises(ValueError, match="exceeds 1024 bytes"):
        urllib_fetch(local_server + "/big", max_bytes=1024)


def test_default_fetch_does_not_follow_redirects(local_server: str) -> None:
    with pytest.raises(OSError, match="302"):
        urllib_fetch(local_server + "/redirect")


# --- Falcon integration (RFC 6750) ------------------------------------------------------

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def challenge(result: falcon.testing.Result) -> tuple[str, dict[str, str]]:
    """Split a WWW-Authenticate header into its scheme and parameters."""
    value = result.headers["WWW-Authenticate"]
    scheme, _, rest = value.partition(" ")
    return scheme, dict(_PARAM.findall(rest))


class Claims:
    """Echo the claims the hook or middleware left on the request."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"sub": req.context.claims["sub"], "scope": req.context.claims["scope"]}


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"ok": True, "claims": "claims" in req.context}


def hooked_app(verifier: Verifier) -> falcon.testing.TestClient:
    @falcon.before(BearerAuth(verifier, required_scopes=["read"], realm="api"))
    class Reader(Claims):
        pass

    @falcon.before(BearerAuth(verifier, required_scopes=["admin", "write"], realm="api"))
    class Admin(Claims):
        pass

    app = falcon.App()
    app.add_route("/read", Reader())
    app.add_route("/admin", Admin())
    return falcon.testing.TestClient(app)


@pytest.fixture
def client(world: World) -> falcon.testing.TestClient:
    return hooked_app(world.verifier)


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def test_hook_puts_claims_on_the_request(client: falcon.testing.TestClient, es: Key) -> None:
    result = client.simulate_get("/read", headers=bearer(mint(es)))

    assert result.status_code == 200
    assert result.json == {"sub": "user-1", "scope": "read write"}


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_bearer_scheme_is_case_insensitive(
    client: falcon.testing.TestClient, es: Key, scheme: str
) -> None:
    assert client.simulate_get("/read", headers=bearer(mint(es), scheme)).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}])
def test_missing_bearer_token_gets_a_bare_challenge(
    client: falcon.testing.TestClient, headers: dict[str, str]
) -> None:
    result = client.simulate_get("/read", headers=headers)

    assert result.status_code == 401
    # RFC 6750 §3.1: no error code when the request carried no bearer credentials.
    assert result.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert "error" not in result.text


def test_invalid_token_gets_invalid_token(
    client: falcon.testing.TestClient, world: World, es: Key
) -> None:
    result = client.simulate_get("/read", headers=bearer(mint(es, claims(aud="elsewhere"))))

    assert result.status_code == 401
    assert challenge(result) == (
        "Bearer",
        {"realm": "api", "error": "invalid_token", "error_description": "wrong audience"},
    )


def test_missing_scope_gets_insufficient_scope(client: falcon.testing.TestClient, es: Key) -> None:
    result = client.simulate_get("/admin", headers=bearer(mint(es)))

    assert result.status_code == 403
    assert challenge(result) == (
        "Bearer",
        {"realm": "api", "error": "insufficient_scope", "scope": "admin write"},
    )


def test_all_required_scopes_pass(client: falcon.testing.TestClient, es: Key) -> None:
    token = mint(es, claims(scope="admin write"))

    assert client.simulate_get("/admin", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", 'Bearer "abc"', "Bearer =abc"]
)
def test_malformed_authorization_gets_invalid_request(
    client: falcon.testing.TestClient, world: World, value: str
) -> None:
    result = client.simulate_get("/read", headers={"Authorization": value})

    assert result.status_code == 400
    assert challenge(result)[1]["error"] == "invalid_request"
    assert world.fetch.calls == []


def test_unreachable_keys_get_503(es: Key) -> None:
    w = make_world(es)
    del w.fetch.routes[JWKS_URI]

    result = hooked_app(w.verifier).simulate_get("/read", headers=bearer(mint(es)))

    assert result.status_code == 503
    assert result.headers["Retry-After"] == "10"
    assert "WWW-Authenticate" not in result.headers


def test_bad_realm_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="realm"):
        BearerAuth(world.verifier, realm='a"b')


@pytest.fixture
def guarded(world: World) -> falcon.testing.TestClient:
    app = falcon.App(middleware=[RequireBearer(world.verifier, exempt_paths={"/healthz"})])
    app.add_route("/claims", Claims())
    app.add_route("/healthz", Health())
    return falcon.testing.TestClient(app)


def test_middleware_puts_claims_on_the_request(guarded: falcon.testing.TestClient, es: Key) -> None:
    result = guarded.simulate_get("/claims", headers=bearer(mint(es)))

    assert result.status_code == 200
    assert result.json["sub"] == "user-1"


def test_middleware_rejects_requests_without_a_token(guarded: falcon.testing.TestClient) -> None:
    for path in ("/claims", "/no-such-path"):
        result = guarded.simulate_get(path)
        assert result.status_code == 401
        assert result.headers["WWW-Authenticate"] == 'Bearer realm="jwtauth"'


def test_middleware_rejects_invalid_tokens(guarded: falcon.testing.TestClient, es: Key) -> None:
    result = guarded.simulate_get("/claims", headers=bearer(mint(es, typ="JWT")))

    assert result.status_code == 401
    assert challenge(result)[1]["error_description"] == "not an access token"


def test_middleware_lets_exempt_paths_through(guarded: falcon.testing.TestClient) -> None:
    result = guarded.simulate_get("/healthz")

    assert result.status_code == 200
    assert result.json == {"ok": True, "claims": False}


def test_middleware_enforces_its_scopes(world: World, es: Key) -> None:
    app = falcon.App(middleware=[RequireBearer(world.verifier, required_scopes=["admin"])])
    app.add_route("/claims", Claims())

    result = falcon.testing.TestClient(app).simulate_get("/claims", headers=bearer(mint(es)))

    assert result.status_code == 403
    assert challenge(result)[1] == {
        "realm": "jwtauth",
        "error": "insufficient_scope",
        "scope": "admin",
    }


# --- one parse per header -----------------------------------------------------------------


def test_tokens_sharing_a_header_are_each_verified_whole(world: World, es: Key) -> None:
    # One key's tokens share one header segment, which the verifier keeps parsed; each token's
    # signature and claims are still checked: another payload under a kept header is refused.
    first, second = mint(es, claims(sub="a")), mint(es, claims(sub="b"))
    assert first.split(".")[0] == second.split(".")[0]
    assert (world.verifier.verify(first)["sub"], world.verifier.verify(second)["sub"]) == ("a", "b")
    head, _, signature = first.split(".")
    swapped = f"{head}.{second.split('.')[1]}.{signature}"
    assert world.reject(swapped) == "bad signature"
    assert world.reject(f"{head}.{second.split('.')[1]}.{signature}=") == "malformed token"
    assert world.reject(mint(es, claims(iss="https://evil.example"))) == "wrong issuer"


def test_the_kept_header_is_read_only(es: Key) -> None:
    from jwtauth.verify.verifier import _header

    header = _header(mint(es).split(".")[0])
    with pytest.raises(TypeError):
        header["alg"] = "none"  # type: ignore[index]


def test_an_unencoded_payload_header_is_refused(world: World, es: Key) -> None:
    # RFC 7797 b64 (without crit, which is refused anyway): our tokens never carry it, and a
    # token signed over its segments must not have a second reading of its payload.
    assert world.reject(mint(es, b64=False)) == "unsupported critical header"  # PyJWS adds crit
    for value in (False, True):
        header = b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": es.kid, "b64": value}).encode())
        signing_input = f"{header}.{b64(json.dumps(claims()).encode())}"
        signature = get_default_algorithms()["ES256"].sign(signing_input.encode(), es.private)
        assert world.reject(f"{signing_input}.{b64(signature)}") == "unsupported header: b64"
