"""PKCE (RFC 7636) as plain functions: S256 only, strict syntax, constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac
import re

from jwt.utils import base64url_encode

from jwtauth.errors import InvalidRequest

S256 = "S256"
METHODS = (S256,)
# RFC 7636 §4.1: code-verifier = 43*128unreserved.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) without padding is always exactly 43 characters, and
# the last one carries 4 bits plus 2 zero bits, so only 16 letters can end a real digest.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def s256(verifier: str) -> str:
    """Return BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64url_encode(digest).decode("ascii")


def valid_verifier(verifier: str) -> bool:
    """Return whether `verifier` has the syntax of RFC 7636 §4.1."""
    return _VERIFIER.fullmatch(verifier) is not None


def checked_challenge(challenge: str | None, method: str | None) -> str | None:
    """Return the S256 challenge of an authorization request, or raise InvalidRequest.

    RFC 7636 §4.3 defaults a missing method to `plain`, and RFC 9700 §2.1.1 says not to accept
    `plain`: so a challenge without a method is refused rather than quietly treated as plain.
    """
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method was sent without code_challenge")
        return None
    if method is None:
        raise InvalidRequest("code_challenge_method is required; only S256 is supported")
    if method not in METHODS:
        raise InvalidRequest("code_challenge_method must be S256")
    if _S256_CHALLENGE.fullmatch(challenge) is None:
        raise InvalidRequest("code_challenge is not a base64url SHA-256 digest (RFC 7636 §4.2)")
    return challenge


def verify(verifier: str, challenge: str) -> bool:
    """Return whether `verifier` matches an S256 `challenge`, in constant time (RFC 7636 §4.6)."""
    if not valid_verifier(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
