"""Define the verifier's exceptions: one tree that callers catch at ``InvalidToken``."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["InvalidToken", "NotModified", "VerifierUnavailable"]


class InvalidToken(Exception):
    """Signal that a token was refused; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VerifierUnavailable(InvalidToken):
    """Signal that no signing keys could be fetched, so no token can be checked now."""


class NotModified(Exception):
    """Raised by a fetch given ``If-None-Match`` when the server answers 304 Not Modified."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__("304 Not Modified")
        self.headers = headers
