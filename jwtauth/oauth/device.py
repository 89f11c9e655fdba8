"""Device Authorization Grant rules (RFC 8628): the grant's name, user codes, polling, lifetime.

A user code is read off one screen and typed on another, so it is short: 8 characters from
the 20 consonants of RFC 8628 §6.1 (no vowels, so no words; no digits, so no 0/O or 1/I
confusion), 20^8 ≈ 2^34.6. That is guessable by design: every entry on /device is counted by
the sign-in limiter per address and globally (`jwtauth.accounts.user_codes`), and a code
lives only `LIFETIME` seconds.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

# RFC 8628 §3.4: the grant_type of the device access token request.
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# What the settings file and `jwtauth clients add --grant` accept for it.
SHORT_NAME = "device_code"
# RFC 8628 §6.1: base-20 consonants, shown as XXXX-XXXX.
ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
INTERVAL = 5  # seconds between polls (RFC 8628 §3.2 default); slow_down adds 5 (§3.5)
SLOW_DOWN_STEP = 5
LIFETIME = 600  # seconds a device request may wait for the user (RFC 8628 §3.2 expires_in)
# Characters a user may type around a code: a dash (as shown), spaces, and nothing else.
_SEPARATORS = str.maketrans("", "", "- ")


def new_user_code(choice: Callable[[str], str] = secrets.choice) -> str:
    """Return a fresh user code in its canonical form (8 letters, no dash)."""
    return "".join(choice(ALPHABET) for _ in range(USER_CODE_LENGTH))


def shown(code: str) -> str:
    """Return a canonical code as the user sees it: XXXX-XXXX."""
    return f"{code[:4]}-{code[4:]}"


def normalized(typed: str | None) -> str | None:
    """Return the canonical code a user typed (any case, with or without the dash), or None.

    RFC 8628 §6.1: the server should be case-insensitive and ignore punctuation the user may
    add. Anything that is not 8 letters of the alphabet cannot be a code, and is None: it is
    refused before Redis is asked (and still counted as a wrong entry).
    """
    if typed is None or len(typed) > 32:
        return None
    code = typed.translate(_SEPARATORS).upper()
    if len(code) != USER_CODE_LENGTH or not set(code) <= set(ALPHABET):
        return None
    return code


def grant_name(name: str) -> str:
    """Return the grant_type a configured name stands for: the short name means the URN."""
    return GRANT_TYPE if name == SHORT_NAME else name
