"""The server pepper: one secret in keys/ that every digest, sealed value and derived key comes from.

Redis must not hold a username in clear (issue 18), and a digest of a username or an IPv4
address is no protection unless it is keyed: a dump lets anyone hash a guess and compare. So
every such digest is an HMAC under a key derived from the pepper, and every name the server
must read back (a refresh family's subject, a code record, an approved device request, a
pushed request) is sealed with AES-256-GCM under another derived key, its associated data
naming the record it belongs to, so a sealed value copied into another record does not open.

Why a file of its own in keys/ and not the signing key: the signing key rotates, and every
value derived from it would die with it (cookies, nonces, every digest Redis keys on). The
pepper is 32 random bytes (`jwtauth keys ensure` writes it, 0600), shared by every worker
that mounts the folder, and never rotates with the signing keys. Each use gets its own key by
HKDF-SHA256 (RFC 5869) with a distinct label, so no two uses can be played against each other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PEPPER_FILE = "pepper"  # in keys/; not *.json, so the key ring never takes it for a key
SIZE = 32
SEALED = "enc1:"  # marks a sealed value; a value without it was written before sealing (upgrade)
_NONCE = 12  # AES-GCM's 96-bit nonce, random (NIST SP 800-38D §8.2.2)
_DIGESTS_KEPT = 4096  # keyed digests remembered per process (digest), of values up to:
_DIGEST_VALUE_KEPT = 512  # characters: a username is at most 256, a counter's name a few more


class PepperError(ValueError):
    """The pepper file is missing or malformed."""


class Unsealed(ValueError):
    """A sealed value did not open: another record's value, tampered with, or another pepper."""


class Pepper:
    """Derive keys, keyed digests and sealed values from the server's one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < SIZE:
            raise PepperError(f"the pepper must hold at least {SIZE} bytes")
        self._secret = secret
        self._keys: dict[str, bytes] = {}
        self._macs: dict[str, Any] = {}  # label -> an HMAC keyed for it, copied per use
        # (label, value) -> digest: a request names the same users, addresses and devices again
        # and again (a password grant looks up five keys); bounded, emptied when full.
        self._digests: dict[tuple[str, str], str] = {}

    @classmethod
    def generate(cls) -> Pepper:
        """Return a fresh random pepper (for one process whose store dies with it)."""
        return cls(secrets.token_bytes(SIZE))

    def derive(self, label: str) -> bytes:
        """Return the 32-byte key of one use, HKDF-SHA256 over the pepper with its own label."""
        key = self._keys.get(label)
        if key is None:
            info = b"jwtauth pepper v1|" + label.encode()
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
            key = self._keys[label] = hkdf.derive(self._secret)
        return key

    def _mac(self, label: str, data: bytes) -> Any:
        # A copy of a keyed HMAC, not hmac.digest: that one-shot call releases the GIL for a
        # microsecond's work, and under the server's threads getting it back cost far more
        # (profiled in a served worker: 10% of its samples); the copy keeps it and skips the key set-up.
        base = self._macs.get(label)
        if base is None:
            base = self._macs[label] = hmac.new(self.derive(label), digestmod=hashlib.sha256)
        mac = base.copy()
        mac.update(data)
        return mac

    def _cipher(self, label: str, bound: str) -> AESGCM:
        # A key per record: random nonces under one never-rotated key would wear out NIST's
        # 2^32-messages bound after months of logins; each record's key seals one value (~2 µs).
        return AESGCM(self._mac(label, b"record|" + bound.encode()).digest())

    def digest(self, label: str, value: str) -> str:
        """Return the keyed digest (hex HMAC-SHA256) under which Redis may look `value` up."""
        known = self._digests.get((label, value))
        if known is not None:
            return known
        made = str(self._mac(label, value.encode()).hexdigest())
        if len(value) <= _DIGEST_VALUE_KEPT:  # a made-up 16 KiB "username" is not worth a place
            if len(self._digests) >= _DIGESTS_KEPT:
                self._digests.clear()  # whoever fills it with made-up names only empties it
            self._digests[(label, value)] = made
        return made

    def keyed(self, label: str, value: str) -> bytes:
        """Return the raw HMAC-SHA256 of a value seen once (not remembered, unlike `digest`)."""
        return bytes(self._mac(label, value.encode()).digest())

    def seal(self, label: str, value: str, bound: str) -> str:
        """Return `value` encrypted for Redis, opening only with the same label and `bound`."""
        nonce = os.urandom(_NONCE)
        sealed = self._cipher(label, bound).encrypt(nonce, value.encode(), bound.encode())
        return SEALED + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, label: str, stored: str, bound: str) -> str:
        """Return a value `seal` stored for `bound`; a value from before sealing comes back as is.

        Raise Unsealed when a sealed value does not open here.
        """
        if not stored.startswith(SEALED):
            return stored  # written in clear before this release; lives out its TTL
        try:
            raw = base64.urlsafe_b64decode(stored[len(SEALED) :].encode("ascii"))
            return self._cipher(label, bound).decrypt(raw[:_NONCE], raw[_NONCE:], bound.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error, UnicodeError):
            raise Unsealed(f"a sealed {label} does not open for this record") from None


def read_pepper(directory: Path) -> Pepper | None:
    """Return the pepper of a keys folder, None if it has none; raise PepperError if malformed."""
    try:
        text = (directory / PEPPER_FILE).read_text("ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeError) as exc:
        raise PepperError(f"cannot read {directory / PEPPER_FILE}: {exc}") from None
    try:
        # validate: a damaged file must not load as some other pepper (a silent reset).
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, binascii.Error):
        raise PepperError(f"{directory / PEPPER_FILE} is not base64url") from None
    return Pepper(raw)


def required_pepper(pepper: Pepper | None, directory: Path) -> Pepper:
    """Return the pepper to use, or say which command makes the missing one."""
    if pepper is None:
        raise PepperError(f"no pepper in {directory}/: run `jwtauth keys ensure` (or `make keygen`)")
    return pepper


def new_pepper_text() -> str:
    """Return the contents of a new pepper file: 32 random bytes, base64url, one line."""
    return base64.urlsafe_b64encode(os.urandom(SIZE)).decode("ascii").rstrip("=") + "\n"
