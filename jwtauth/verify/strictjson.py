"""Parse JSON objects strictly: tokens, metadata and JWK Sets alike refuse anything ambiguous."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_object"]


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
