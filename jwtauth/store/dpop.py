"""Remember DPoP proofs the token endpoint accepted, so each is accepted once (RFC 9449 §11.1).

Key layout: `{prefix}dpop:{<sha256(jkt|jti)>}`, a string set with SET NX and a TTL of the proof
window plus leeway: one command, one key, its own hash tag. The verifier's RedisReplayCache is
exactly this operation, so the server uses it rather than a second copy.
"""

from __future__ import annotations

from typing import Any

from jwtauth.verify.replay import RedisReplayCache


def proof_markers(client: Any, *, prefix: str) -> RedisReplayCache:
    """Return the replay set of the token endpoint's DPoP proofs on `client`, under `prefix`."""
    return RedisReplayCache(client, prefix=f"{prefix}dpop:")
