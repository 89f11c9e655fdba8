"""The signed session cookie (jwtauth.oidc.session): round trip, tampering, expiry, keys, consent."""

from __future__ import annotations

import dataclasses

from jwt.utils import base64url_decode, base64url_encode

from jwtauth.oidc.session import MAX_CONSENTS, SessionCodec, cookie_name, new_session
from jwtauth.store.pepper import Pepper
from tests.helpers import PEPPER

NOW = 1_900_000_000.0


def codec() -> SessionCodec:
    return SessionCodec(PEPPER)


def test_a_cookie_reads_back_as_the_session_it_was() -> None:
    session = new_session("alice", "sub-1", now=NOW, ttl=600, amr=("pwd",)).with_consent(
        "c", "aud", ["openid"]
    )
    value = codec().encode(session)
    assert value.startswith("v2.")
    assert codec().decode(value, now=NOW + 1) == session
    assert len(session.sid) == 43  # 256 random bits


def test_an_expired_tampered_or_foreign_cookie_is_no_session() -> None:
    session = new_session("alice", "sub-1", now=NOW, ttl=600, amr=("pwd",))
    value = codec().encode(session)
    assert codec().decode(value, now=NOW + 600) is None  # expired
    version, payload, mac = value.split(".")
    body = base64url_decode(payload).replace(b'"alice"', b'"admin"')
    forged = f"{version}.{base64url_encode(body).decode()}.{mac}"
    assert codec().decode(forged, now=NOW) is None
    assert codec().decode(f"v1.some-kid.{payload}.{mac}", now=NOW) is None  # the old format
    assert codec().decode(value + "x", now=NOW) is None
    assert codec().decode(None, now=NOW) is None
    # A MAC under another pepper: another deployment's cookie (or ours after a pepper rotation).
    other = SessionCodec(Pepper(b"another deployment's pepper 32B!"))
    assert other.decode(value, now=NOW) is None


def test_consent_covers_its_scopes_and_audience_only() -> None:
    session = new_session("alice", "s", now=NOW, ttl=60, amr=()).with_consent("c", "https://api", ["a", "b"])
    assert session.consented("c", "https://api", ["a"])
    assert not session.consented("c", "https://api", ["a", "c"])
    assert not session.consented("c", "https://other", ["a"])
    assert not session.consented("d", "https://api", ["a"])


def test_consent_memory_is_bounded() -> None:
    session = new_session("alice", "s", now=NOW, ttl=60, amr=())
    for i in range(MAX_CONSENTS + 3):
        session = session.with_consent(f"client{i}", "aud", ["x"])
    assert len(session.consent) == MAX_CONSENTS
    assert "client0" not in session.consent and f"client{MAX_CONSENTS + 2}" in session.consent
    assert dataclasses.replace(session).consent == session.consent


def test_the_cookie_is_host_bound_under_https() -> None:
    assert cookie_name(True) == "__Host-jwtauth-session"
    assert cookie_name(False) == "jwtauth-session"
