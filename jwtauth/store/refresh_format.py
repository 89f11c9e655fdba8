"""Spell refresh tokens: `<family_id>.<secret>`, both base64url without padding.

The store owns the format; jwtauth.tokens.reader reads the shape from here to tell a refresh
token from a JWS without asking Redis.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from jwt.utils import base64url_decode, base64url_encode

_B64_16 = r"[A-Za-z0-9_-]{22}"  # the family id: 16 bytes, random or keyed from a code (codes.py)
_B64_32 = r"[A-Za-z0-9_-]{43}"  # the secret: 32 random bytes

FAMILY_ID = re.compile(_B64_16)
REFRESH_TOKEN = re.compile(rf"{_B64_16}\.{_B64_32}")


def new_family() -> tuple[str, bytes]:
    """Draw a family id and its first secret."""
    return b64(secrets.token_bytes(16)), new_secret()


def new_secret() -> bytes:
    """Draw a family's first secret (its id may come from elsewhere: a code's, see codes.py)."""
    return secrets.token_bytes(32)


def token(family_id: str, secret: bytes) -> str:
    """Return the refresh token that carries `secret` for `family_id`."""
    return f"{family_id}.{b64(secret)}"


def parse(value: str) -> tuple[str, bytes] | None:
    """Split a token into (family_id, raw secret); None unless both parts are canonical."""
    if not REFRESH_TOKEN.fullmatch(value):
        return None
    family_id, _, encoded = value.partition(".")
    try:
        secret = base64url_decode(encoded)
        family = base64url_decode(family_id)
    except ValueError:  # binascii.Error is a ValueError
        return None
    # One secret, one spelling: non-zero padding bits would otherwise decode to the same bytes.
    if b64(secret) != encoded or b64(family) != family_id:
        return None
    return family_id, secret


def digest(secret: bytes) -> str:
    """Return what Redis keeps of a secret: its SHA-256, never the secret itself."""
    return hashlib.sha256(secret).hexdigest()


def b64(raw: bytes) -> str:
    """Return base64url without padding."""
    return base64url_encode(raw).decode("ascii")
