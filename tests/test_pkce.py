"""Tests for jwtauth.oauth.pkce: S256 only, syntax of challenge and verifier, the RFC 7636 vector."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwtauth.errors import InvalidRequest
from jwtauth.oauth import pkce

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def test_s256_matches_the_rfc_7636_example() -> None:
    assert pkce.s256(VERIFIER) == CHALLENGE
    assert pkce.verify(VERIFIER, CHALLENGE)


@pytest.mark.parametrize(
    "verifier",
    ["a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + "=", "a" * 42 + " ", "a" * 42 + "é", ""],
)
def test_malformed_verifiers_are_refused(verifier: str) -> None:
    assert not pkce.valid_verifier(verifier)
    assert not pkce.verify(verifier, pkce.s256("a" * 43))


def test_verifier_length_bounds_are_inclusive() -> None:
    assert pkce.valid_verifier("a" * 43) and pkce.valid_verifier(UNRESERVED[:43])
    assert pkce.valid_verifier("~" * 128)


def test_wrong_verifier_does_not_match() -> None:
    assert not pkce.verify(VERIFIER[:-1] + "l", CHALLENGE)


@given(st.text(alphabet=UNRESERVED, min_size=43, max_size=128))
def test_every_valid_verifier_yields_a_challenge_that_passes_the_syntax_check(verifier: str) -> None:
    challenge = pkce.s256(verifier)
    assert pkce.checked_challenge(challenge, "S256") == challenge
    assert pkce.verify(verifier, challenge)


def test_no_challenge_means_no_pkce() -> None:
    assert pkce.checked_challenge(None, None) is None


@pytest.mark.parametrize(
    ("challenge", "method", "words"),
    [
        (CHALLENGE, None, "code_challenge_method is required"),  # would default to plain
        (CHALLENGE, "plain", "must be S256"),
        (CHALLENGE, "s256", "must be S256"),  # methods are case-sensitive
        (None, "S256", "without code_challenge"),
        (CHALLENGE[:-1], "S256", "not a base64url SHA-256"),
        (CHALLENGE + "A", "S256", "not a base64url SHA-256"),
        (CHALLENGE[:-1] + "B", "S256", "not a base64url SHA-256"),  # low bits of a digest are 0
        (CHALLENGE[:-1] + "=", "S256", "not a base64url SHA-256"),
    ],
)
def test_bad_challenges_are_invalid_requests(challenge: str | None, method: str | None, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        pkce.checked_challenge(challenge, method)
