"""Parse JOSE parts strictly: one spelling of base64url, JSON objects without ambiguity."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from jwt.utils import base64url_decode

__all__ = ["decode_segment", "header_object", "parse_object"]

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


@functools.lru_cache(maxsize=512)
def header_object(segment: str) -> Mapping[str, Any]:
    """Return a JOSE header segment decoded and parsed, read-only throughout; raise ValueError.

    Kept: one key's tokens, or one client's DPoP proofs, share one header segment, so it is
    parsed once per process. Every caller gets the same object, which is why nothing in it can
    be changed. A refusal is not kept.
    """
    frozen: Mapping[str, Any] = _frozen(parse_object(decode_segment(segment)))
    return frozen


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({name: _frozen(member) for name, member in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
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
