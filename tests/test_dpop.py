"""jwtauth.verify.dpop, .nonce and .replay: the proof rules both ends run, nonces, replay caches."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from jwtauth.keys import thumbprint
from jwtauth.verify.dpop import InvalidProof, access_token_hash, check_proof, jwk_thumbprint
from jwtauth.verify.errors import VerifierUnavailable
from jwtauth.verify.nonce import NonceSource
from jwtauth.verify.replay import MemoryReplayCache, RedisReplayCache, replay_key
from tests.dpopkit import TOKEN_URL, DPoPKey

NOW = 1_900_000_000.0


def check(proof: str, **kwargs: Any) -> Any:
    args: dict[str, Any] = {"htm": "POST", "htu": TOKEN_URL, "now": NOW, **kwargs}
    return check_proof(proof, **args)


def test_rfc7638_example_thumbprint() -> None:
    # RFC 7638 §3.1's worked example.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
        "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRw"
        "r3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert thumbprint(jwk) == jwk_thumbprint(jwk)  # the kid and the jkt are one rule


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (None, "ES256"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        (rsa.generate_private_key(65537, 2048), "PS256"),
    ],
)
def test_good_proof_returns_its_key_thumbprint(key: Any, alg: str) -> None:
    client = DPoPKey(key, alg)
    proof = check(client.proof(iat=NOW, jti="one"))
    assert (proof.jkt, proof.jti, proof.iat, proof.nonce) == (client.jkt, "one", NOW, None)


def test_htu_ignores_query_fragment_case_and_default_port() -> None:
    client = DPoPKey()
    htu = "HTTPS://Example.COM:443/api?x=1#f"
    assert check(client.proof(iat=NOW, htu=htu), htu="https://example.com/api").jkt == client.jkt
    with pytest.raises(InvalidProof, match="another URL"):
        check(client.proof(iat=NOW, htu="https://example.com/api/"), htu="https://example.com/api")


def test_ath_binds_the_proof_to_one_token() -> None:
    client = DPoPKey()
    proof = client.proof(iat=NOW, htm="GET", token="tok.en.one")
    assert check(proof, htm="GET", access_token="tok.en.one").jkt == client.jkt
    with pytest.raises(InvalidProof, match="not for this access token"):
        check(proof, htm="GET", access_token="tok.en.two")
    # RFC 9449 §7.1's example token and its ath.
    example = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(example) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_iat_window_and_leeway() -> None:
    client = DPoPKey()
    assert check(client.proof(iat=NOW - 60), window=60)
    assert check(client.proof(iat=NOW + 5), leeway=5)
    with pytest.raises(InvalidProof, match="too old"):
        check(client.proof(iat=NOW - 61), window=60)
    with pytest.raises(InvalidProof, match="future"):
        check(client.proof(iat=NOW + 6), leeway=5)
    with pytest.raises(InvalidProof, match="iat"):
        check(client.proof(iat="soon"))


@pytest.mark.parametrize("missing", ["jti", "htm", "htu"])
def test_required_claims(missing: str) -> None:
    with pytest.raises(InvalidProof, match=missing):
        check(DPoPKey().proof(iat=NOW, **{missing: None}))


def test_nonces_rotate_and_are_bound_to_the_secret() -> None:
    now = [NOW]
    nonces = NonceSource(lambda: [b"secret"], lifetime=300, clock=lambda: now[0])
    other = NonceSource(lambda: [b"other"], lifetime=300, clock=lambda: now[0])
    nonce = nonces.current()
    assert nonces.valid(nonce) and not other.valid(nonce) and not nonces.valid(None)
    now[0] += 300  # one slot later still good, two no longer
    assert nonces.valid(nonce) and nonces.current() != nonce
    now[0] += 300
    assert not nonces.valid(nonce)
    for forged in ("", "x", nonce + "A", "0" + nonce, nonce.replace(".", "")):
        assert not nonces.valid(forged)


def test_memory_cache_remembers_until_expiry_and_fails_closed_when_full() -> None:
    now = [0.0]
    cache = MemoryReplayCache(max_entries=2, clock=lambda: now[0])
    assert cache.first_use("a", 10) and not cache.first_use("a", 10)
    assert cache.first_use("b", 10)
    with pytest.raises(VerifierUnavailable):
        cache.first_use("c", 10)
    now[0] = 11
    assert cache.first_use("a", 10) and cache.first_use("c", 10)


def test_redis_cache_is_one_set_nx_with_a_ttl(store: Any) -> None:
    cache = RedisReplayCache(store, prefix="rs:")
    key = replay_key("jkt", "jti")
    assert cache.first_use(key, 1.5) and not cache.first_use(key, 1.5)
    assert 0 < store.pttl(f"rs:{{{key}}}") <= 1500
    with pytest.raises(ValueError):
        RedisReplayCache(store, prefix="{x}")


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (None, "ES256"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        (rsa.generate_private_key(65537, 2048), "PS256"),
    ],
)
def test_signature_must_cover_the_segments_as_sent(key: Any, alg: str) -> None:
    client = DPoPKey(key, alg)
    head, body, signature = client.proof(iat=NOW).split(".")
    other_body = client.proof(iat=NOW).split(".")[1]  # another jti, same key
    short = signature[: len(signature) // 2]
    for bad in (short, "", "AAAA"):
        with pytest.raises(InvalidProof, match=r"signature does not verify|malformed"):
            check(f"{head}.{body}.{bad}")
    with pytest.raises(InvalidProof, match="signature does not verify"):
        check(f"{head}.{other_body}.{signature}")
    assert check(f"{head}.{body}.{signature}").jkt == client.jkt  # a cached key, a good proof
    assert check(client.proof(iat=NOW)).jkt == client.jkt


def test_a_cached_key_never_outlives_its_checks() -> None:
    # A jwk that makes no key is refused every time (refusals are not cached) ...
    bad = DPoPKey()
    bad.jwk = {**bad.jwk, "x": bad.jwk["y"]}  # not a point on the curve
    for _ in range(2):
        with pytest.raises(InvalidProof, match="not a valid key"):
            check(bad.proof(iat=NOW))
    # ... and a private member is refused before any cache lookup, even for a key seen before.
    client = DPoPKey()
    check(client.proof(iat=NOW))
    with pytest.raises(InvalidProof, match="public key"):
        check(client.proof(iat=NOW, header={"jwk": {**client.jwk, "d": "AAAA"}}))


def test_a_shared_header_is_parsed_once_and_every_proof_is_still_checked_whole() -> None:
    # A client's proofs share one header segment, which is kept parsed; each proof's claims,
    # signature and request binding are checked every time all the same.
    client = DPoPKey()
    first, second = client.proof(iat=NOW, jti="a"), client.proof(iat=NOW, jti="b")
    assert first.split(".")[0] == second.split(".")[0]
    assert (check(first).jti, check(second).jti) == ("a", "b")
    with pytest.raises(InvalidProof, match="another URL"):
        check(client.proof(iat=NOW, htu="https://evil.example/token"))
    with pytest.raises(InvalidProof, match="another HTTP method"):
        check(client.proof(iat=NOW, htm="GET"))
    with pytest.raises(InvalidProof, match="too old"):
        check(first, now=NOW + 3600)
    # The header kept is read-only, its jwk too: no caller can change what the next proof reads.
    from jwtauth.verify.dpop import _decoded_header

    kept = _decoded_header(first.split(".")[0])
    with pytest.raises(TypeError):
        kept["alg"] = "none"  # type: ignore[index]
    with pytest.raises(TypeError):
        kept["jwk"]["x"] = client.jwk["y"]


def test_a_refused_header_is_refused_again_and_narrower_algorithms_still_apply() -> None:
    client = DPoPKey()
    wrong_typ = client.proof(iat=NOW, header={"typ": "JWT"})
    for _ in range(2):  # refusals are never kept
        with pytest.raises(InvalidProof, match="typ dpop\\+jwt"):
            check(wrong_typ)
    good = client.proof(iat=NOW)
    assert check(good).jkt == client.jkt
    # The same (kept) header under a caller that allows only EdDSA: refused.
    with pytest.raises(InvalidProof, match="algorithm is not allowed"):
        check(good, algorithms=("EdDSA",))


def test_htu_spelled_exactly_as_the_server_names_itself_and_with_a_user_part() -> None:
    client = DPoPKey()
    assert check(client.proof(iat=NOW, htu=TOKEN_URL)).jkt == client.jkt
    with_user = TOKEN_URL.replace("://", "://user:pass@")
    with pytest.raises(InvalidProof, match="another URL"):
        check(client.proof(iat=NOW, htu=with_user))
    with pytest.raises(InvalidProof, match="another URL"):
        check(client.proof(iat=NOW, htu="https://example.com:99999/api"), htu="https://example.com/api")
