"""Attacks on the revocation document: forged, unsigned, retyped, expired or rolled back, it is refused.

The verifier fails closed: a refused document leaves the last good one in use until its own exp,
and with no good document every token is refused (VerifierUnavailable: 503, never a silent accept).
"""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from falcon import testing

from jwtauth.resources import paths
from jwtauth.verify import InvalidToken, VerifierUnavailable
from tests.helpers import Clock, MakeApp, login, revoke, tokens_of
from tests.revocationkit import subscribed

MAX_AGE = 30


@pytest.fixture
def http(make_app: MakeApp) -> testing.TestClient:
    return make_app()


def _parts(document: bytes) -> tuple[dict[str, object], dict[str, object]]:
    text = document.decode()
    return jwt.get_unverified_header(text), jwt.decode(text, options={"verify_signature": False})


def _forged(document: bytes) -> bytes:
    """Re-sign the real document, emptied, with the real kid but the attacker's key."""
    header, claims = _parts(document)
    claims["revoked_families"] = []
    attacker = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(
        claims, attacker, algorithm="ES256", headers={"kid": header["kid"], "typ": header["typ"]}
    ).encode()


def _unsigned(document: bytes) -> bytes:
    header, claims = _parts(document)
    claims["revoked_families"] = []

    def b64(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{b64({**header, 'alg': 'none'})}.{b64(claims)}.".encode()


@pytest.mark.parametrize("tamper", [_forged, _unsigned], ids=["forged", "unsigned"])
def test_a_tampered_document_is_refused_and_the_held_one_stays(
    http: testing.TestClient, clock: Clock, tamper: object
) -> None:
    verifier, fetch = subscribed(http, clock)
    access, refresh_token = tokens_of(login(http))
    revoke(http, refresh_token)
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(access)
    fetch.replace = tamper  # type: ignore[assignment]
    clock.now += MAX_AGE
    with pytest.raises(InvalidToken, match="revoked"):  # the emptied copy did not replace the real one
        verifier.verify(access)
    clock.now += 5 * MAX_AGE  # past the held document's exp, with only tampered copies on offer
    with pytest.raises(VerifierUnavailable):
        verifier.verify(access)


def test_a_tampered_first_document_fails_closed(http: testing.TestClient, clock: Clock) -> None:
    verifier, fetch = subscribed(http, clock)
    fetch.replace = _forged
    access, _ = tokens_of(login(http))
    with pytest.raises(VerifierUnavailable):
        verifier.verify(access)


def test_an_access_token_cannot_pose_as_the_document(http: testing.TestClient, clock: Clock) -> None:
    verifier, fetch = subscribed(http, clock)
    access, _ = tokens_of(login(http))
    fetch.replace = lambda _: access.encode()  # signed by the same key, but typ at+jwt
    with pytest.raises(VerifierUnavailable):
        verifier.verify(access)


def test_the_document_cannot_pose_as_an_access_token(http: testing.TestClient, clock: Clock) -> None:
    verifier, _ = subscribed(http, clock)
    document = http.simulate_get(paths.REVOCATIONS).text
    with pytest.raises(InvalidToken, match="not an access token"):
        verifier.verify(document)


def test_an_expired_document_replayed_is_refused(http: testing.TestClient, clock: Clock) -> None:
    old = http.simulate_get(paths.REVOCATIONS).content
    clock.now += 10 * MAX_AGE
    verifier, fetch = subscribed(http, clock)
    fetch.replace = lambda _: old
    access, _ = tokens_of(login(http))
    with pytest.raises(VerifierUnavailable):
        verifier.verify(access)


def test_an_older_document_cannot_roll_back_a_revocation(http: testing.TestClient, clock: Clock) -> None:
    before = http.simulate_get(paths.REVOCATIONS).content  # still within its exp below
    clock.now += MAX_AGE
    verifier, fetch = subscribed(http, clock)
    access, refresh_token = tokens_of(login(http))
    revoke(http, refresh_token)
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(access)
    fetch.replace = lambda _: before
    clock.now += MAX_AGE
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(access)


def test_an_unreachable_issuer_fails_closed(http: testing.TestClient, clock: Clock) -> None:
    verifier, fetch = subscribed(http, clock)
    access, _ = tokens_of(login(http))
    verifier.verify(access)

    def down(_: bytes) -> bytes:
        raise OSError("connection refused")

    fetch.replace = down
    clock.now += 2 * MAX_AGE
    assert verifier.verify(access)  # the held document serves until its exp
    clock.now += 4 * MAX_AGE
    with pytest.raises(VerifierUnavailable):
        verifier.verify(access)
