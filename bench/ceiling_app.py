"""Stack ceiling: the least a client_credentials token endpoint can do on Falcon + PyJWT.

One route, ``POST /api/v1/tokens/``: parse the form body, check HTTP Basic client auth in
constant time, sign an RFC 9068 access token. No config, no store, no key ring: the key is
generated at import. jwtauth's real endpoint is measured against this number.

``CEILING_ALG`` picks the algorithm: ES256 (default), RS256 or EdDSA.

With ``CEILING_REDIS_URL`` it also serves ``/api/v1/tokens/redis1``: the same token after one
Redis round trip (a plain redis-py ``SET`` with a TTL, under ``CEILING_REDIS_PREFIX``). Served
by jwtauth's own serving layer, this is the least a grant that keeps state in Redis can cost on
this stack: what bounds jwtauth's Redis grants, each one round trip (bench/bounds.py).
Serve with e.g. ``gunicorn bench.ceiling_app:app`` or
``granian --interface wsgi bench.ceiling_app:app``.
"""

from __future__ import annotations

import base64
import hmac
import os
import time
import uuid
from typing import Any

import falcon
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "http://127.0.0.1:8000"
AUDIENCE = "https://api.example.com"
CLIENT_ID = "testclient"
CLIENT_SECRET = "testpassword"
SCOPE = "read write"
TTL = 900

ALGORITHMS = ("ES256", "RS256", "EdDSA")

_EXPECTED_AUTH = ("Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()).encode()


def generate_key(alg: str) -> Any:
    """A fresh private key for ``alg`` (a cryptography key object PyJWT signs with directly)."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported algorithm {alg!r}; pick one of {ALGORITHMS}")


def claims(now: int | None = None) -> dict[str, Any]:
    """The claims of one access token (RFC 9068 shape)."""
    iat = int(time.time()) if now is None else now
    return {
        "iss": ISSUER,
        "sub": CLIENT_ID,
        "aud": AUDIENCE,
        "exp": iat + TTL,
        "iat": iat,
        "jti": uuid.uuid4().hex,
        "client_id": CLIENT_ID,
        "scope": SCOPE,
    }


ALG = os.environ.get("CEILING_ALG", "ES256")
KEY = generate_key(ALG)
KID = f"bench-{ALG.lower()}"
HEADERS = {"kid": KID, "typ": "at+jwt"}


def _client_ok(req: falcon.Request) -> bool:
    auth = req.get_header("Authorization") or ""
    return hmac.compare_digest(auth.encode(), _EXPECTED_AUTH)


class TokenResource:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = {k: v for k, v in req.get_media().items() if isinstance(v, str)}
        resp.set_header("Cache-Control", "no-store")
        if not _client_ok(req):
            resp.status = falcon.HTTP_401
            resp.set_header("WWW-Authenticate", 'Basic realm="jwtauth"')
            resp.media = {"error": "invalid_client"}
            return
        if form.get("grant_type") != "client_credentials":
            resp.status = falcon.HTTP_400
            resp.media = {"error": "unsupported_grant_type"}
            return
        token = jwt.encode(claims(), KEY, algorithm=ALG, headers=HEADERS)
        resp.media = {"access_token": token, "token_type": "Bearer", "expires_in": TTL}


class RedisTokenResource(TokenResource):
    """The same token, each request first writing a key to Redis: one round trip."""

    def __init__(self, store: Any, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.store.set(f"{self.prefix}{uuid.uuid4().hex}", b"1", px=60_000)
        super().on_post(req, resp)


def create_app() -> falcon.App[falcon.Request, falcon.Response]:
    """Factory form, for servers started with ``--factory``."""
    application = falcon.App()
    application.add_route("/api/v1/tokens/", TokenResource())
    url = os.environ.get("CEILING_REDIS_URL")
    if url:
        import redis

        store = redis.Redis.from_url(url)
        prefix = os.environ.get("CEILING_REDIS_PREFIX", "ceiling:")
        application.add_route("/api/v1/tokens/redis1", RedisTokenResource(store, prefix))
    return application


app = create_app()
