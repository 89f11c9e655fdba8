"""Public documents: the JWK Set and the RFC 8414 metadata, served from precomputed bytes."""

from __future__ import annotations

import json
from typing import Any

import falcon

from jwtauth.keys import KeyRing


class JWKSResource:
    """GET /jwks: public keys only, cacheable, with an ETag."""

    def __init__(self, keyring: KeyRing, max_age: int) -> None:
        self.keyring = keyring
        self.cache_control = f"public, max-age={max_age}"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, etag = self.keyring.jwks()
        resp.set_header("Cache-Control", self.cache_control)
        resp.set_header("ETag", etag)
        # RFC 9110 §13.1.2: If-None-Match uses the weak comparison, so W/"x" matches "x".
        if_none_match = req.get_header("If-None-Match") or ""
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        if etag in tags or "*" in tags:
            # RFC 9110 §15.4.5: a 304 repeats Cache-Control and ETag, and has no content.
            resp.status = falcon.HTTP_304
            return
        resp.content_type = "application/jwk-set+json"
        resp.data = body

    # RFC 9110 §9.3.2: HEAD is GET without content (Falcon drops the body); caches use it.
    on_head = on_get


class MetadataResource:
    """GET /.well-known/oauth-authorization-server (RFC 8414 §3)."""

    def __init__(self, metadata: dict[str, Any], max_age: int) -> None:
        self.body = json.dumps(metadata, indent=2).encode()
        self.cache_control = f"public, max-age={max_age}"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", self.cache_control)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.body

    on_head = on_get  # RFC 9110 §9.3.2
