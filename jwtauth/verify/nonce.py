"""Issue and check stateless DPoP nonces (RFC 9449 §8, §9): an HMAC of a time slot.

A nonce is `<slot>.<mac>`: the slot is the current time divided by `lifetime`, the mac an
HMAC-SHA256 of the slot under a secret every worker shares. No state: any worker holding the
secret checks any other's nonce. Nonces rotate every `lifetime` seconds; one stays valid for the
slot before and after its own, so a client never races a rotation or a second of clock skew.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from typing import Final

from jwt.utils import base64url_encode

__all__ = ["NonceSource"]

_LABEL: Final = b"jwtauth-dpop-nonce-v1|"


class NonceSource:
    """Issue and check the nonces of one secret (or one of several during a secret's rotation).

    `secrets` returns the secrets in use: nonces are issued with the first and accepted under
    any. A callable, so a server can derive them from keys that change while it runs.
    """

    def __init__(
        self,
        secrets: Callable[[], Sequence[bytes]],
        *,
        lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the secrets, the rotation period and the clock."""
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self._secrets, self._lifetime, self._clock = secrets, lifetime, clock

    def current(self) -> str:
        """Return the nonce to hand out now (the `DPoP-Nonce` header)."""
        secrets = self._secrets()
        if not secrets:
            raise ValueError("no nonce secret is available")
        slot = self._slot()
        return f"{slot:x}.{_mac(secrets[0], slot)}"

    def valid(self, nonce: str | None) -> bool:
        """Tell whether `nonce` was issued under one of the secrets for a slot near now."""
        if nonce is None:
            return False
        slot_text, dot, mac = nonce.partition(".")
        if not dot or not 0 < len(slot_text) <= 16 or len(mac) != 43 or not mac.isascii():
            # compare_digest raises TypeError on non-ASCII text: a 500 for the client's input.
            return False
        try:
            slot = int(slot_text, 16)
        except ValueError:
            return False
        if abs(slot - self._slot()) > 1 or slot_text != f"{slot:x}":
            return False
        return any(hmac.compare_digest(mac, _mac(secret, slot)) for secret in self._secrets())

    def _slot(self) -> int:
        return int(self._clock() // self._lifetime)


def _mac(secret: bytes, slot: int) -> str:
    digest = hmac.new(secret, _LABEL + str(slot).encode(), hashlib.sha256).digest()
    return base64url_encode(digest).decode("ascii")
