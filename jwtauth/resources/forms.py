"""Read an OAuth request body: form-encoded, UTF-8, size-capped, each parameter at most once."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import falcon

from jwtauth.errors import InvalidRequest, InvalidTarget, PayloadTooLarge, UnsupportedMediaType

MAX_BODY = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def parse_params(raw: str) -> dict[str, str]:
    """Parse a form-encoded string; reject duplicates and treat empty values as omitted."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("parameters are not valid UTF-8 form encoding") from None
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        # RFC 6749 §3.1: request and response parameters MUST NOT be included more than once.
        if name in seen:
            if name == "resource":
                # RFC 8707 §2 allows several; a token here has one audience, so the error is its own.
                raise InvalidTarget("one resource per request: each token has a single audience")
            raise InvalidRequest(f"parameter {name[:40]!r} is repeated")
        seen.add(name)
        if "\x00" in value or "\x00" in name:
            raise InvalidRequest("parameters must not contain NUL characters")
        # RFC 6749 §3.1: parameters sent without a value are treated as if omitted.
        if value:
            params[name] = value
    return params


def read_form(req: falcon.Request) -> dict[str, str]:
    """Return the body parameters of a POST, or raise the OAuth error that fits."""
    media = (req.content_type or "").split(";", 1)
    if media[0].strip().lower() != FORM_TYPE:
        raise UnsupportedMediaType(f"send the parameters as {FORM_TYPE} (RFC 6749 §3.2)")
    charset = media[1].strip().lower() if len(media) > 1 else ""
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        raise UnsupportedMediaType("the body must be UTF-8")
    length = req.content_length
    if length is not None and length > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes")
    if length is None and req.env.get("wsgi.input_terminated"):
        # A chunked body has no Content-Length; servers that decode the framing end the stream
        # (gunicorn, granian), so read it up to the cap instead of taking it as empty.
        body = _read_capped(req.stream)
    elif length:
        # Exactly Content-Length bytes: no extra read to find the end, which would cost one
        # more call into the server per request.
        body = _read_capped(req.stream, length)
    else:
        body = b""
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes")
    try:
        text = body.decode("utf-8")
        text.encode("ascii")
    except UnicodeError:
        # Form encoding is ASCII on the wire; raw non-ASCII bytes mean a broken client.
        raise InvalidRequest("the body must be form-encoded ASCII") from None
    return parse_params(text)


def _read_capped(stream: Any, limit: int = MAX_BODY + 1) -> bytes:
    """Read until the end of the stream or `limit` bytes (one past MAX_BODY), whichever comes first."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def reject_query(req: falcon.Request) -> None:
    """Refuse parameters in the URI of an endpoint that takes them from the body only."""
    # RFC 6749 §2.3.1 and §3.2: credentials and token-request parameters MUST NOT be in the URI,
    # where they end up in logs and browser history.
    if req.query_string:
        raise InvalidRequest("send parameters in the request body, not in the URL (RFC 6749 §3.2)")
