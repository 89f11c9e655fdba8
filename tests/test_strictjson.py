"""jwtauth/verify/strictjson.py: one spelling of base64url, unambiguous JSON, a kept header read-only."""

from __future__ import annotations

import base64
import json

import pytest

from jwtauth.verify.strictjson import header_object


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_kept_header_is_read_only_at_every_level() -> None:
    header = header_object(_segment({"alg": "ES256", "jwk": {"kty": "EC"}, "x5c": ["a"]}))
    assert header is header_object(_segment({"alg": "ES256", "jwk": {"kty": "EC"}, "x5c": ["a"]}))
    with pytest.raises(TypeError):
        header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(TypeError):
        header["jwk"]["kty"] = "oct"
    assert header["x5c"] == ("a",)


@pytest.mark.parametrize(
    "segment",
    [
        _segment({"a": 1}) + "=",
        "A",
        _segment([1]),
        base64.urlsafe_b64encode(b'{"a":1,"a":2}').decode().rstrip("="),
    ],
)
def test_a_refused_header_is_refused_every_time(segment: str) -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            header_object(segment)
