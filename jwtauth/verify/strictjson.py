"""Parse JOSE parts strictly: one spelling of base64url, JSON objects without ambiguity."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from jwt.utils import base64url_decode

__all__ = ["decode_segment", "parse_object"]

_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


def decode_segment(segment: str) -> bytes:
    """Decode one unpadded base64url segment (RFC 7515 §2); raise ValueError for any other spelling.

    PyJWT's decoder alone also takes '+', '/', '=' and skips other characters, so one token
    would have several spellings; only the canonical alphabet gets this far.
    """
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64url_decode(segment)  # binascii.Error is a ValueError


def parse_object(data: bytes) -> dict[str, Any]:
    """Parse ``data`` as one JSON object; raise ValueError otherwise."""
    try:
        value = json.loads(data, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing duplicate names (RFC 7515 §5.2, RFC 8725 §3.1)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _no_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which are not JSON (RFC 8259 §6)."""
    raise ValueError(f"invalid JSON constant {name}")
