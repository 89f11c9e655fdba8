"""The JSON answer every API endpoint gives: status, body, and never cached."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import falcon

# RFC 6749 §5.1: token responses (and their errors, and anything else carrying token state)
# must not be cached; Pragma for HTTP/1.0 caches.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def send_json(
    resp: falcon.Response,
    body: Mapping[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer `body` as JSON with `no-store` and any extra headers."""
    resp.status = status
    resp.set_headers(NO_STORE)
    if headers:
        resp.set_headers(headers)
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps(body).encode()
