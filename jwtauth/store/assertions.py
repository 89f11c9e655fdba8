"""Remember the `jti` of every client assertion accepted, so each is accepted once (RFC 7523 §3).

Key layout: `{prefix}jti:{<sha256(client_id|jti)>}`, set with SET NX and a TTL that reaches the
assertion's `exp` (after which the assertion is refused as expired anyway): one command, one key,
its own hash tag. It is the very operation of the DPoP replay set, so it is reused.
"""

from __future__ import annotations

import hashlib
from typing import Any

from jwtauth.verify.replay import RedisReplayCache


def assertion_markers(client: Any, *, prefix: str) -> RedisReplayCache:
    """Return the set of spent client-assertion ids on `client`, under `prefix`."""
    return RedisReplayCache(client, prefix=f"{prefix}jti:")


def assertion_key(client_id: str, jti: str) -> str:
    """Return the marker of one assertion: a digest, so a dump of Redis shows no client's jti."""
    # RFC 7523 §3 item 7: jti is unique per issuer, so the client id keeps clients apart.
    return hashlib.sha256(f"{client_id}|{jti}".encode()).hexdigest()
