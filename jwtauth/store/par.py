"""Keep pushed authorization requests (RFC 9126) in Redis until used once or expired.

Key layout: `{prefix}{par:<sha256(reference)>}`, a hash of client, exp and the validated
parameters as JSON, with a TTL of the request's lifetime. Only the SHA-256 of the request_uri's
random part is stored, so a dump of Redis names no usable request_uri. The parameters (a
`login_hint` may name the user) are sealed under a pepper-derived key bound to that digest
(jwtauth.store.pepper); clear ones from before that are still read until they expire. The request is read
(`peek`) as often as the sign-in page needs it, and consumed once (`take`, one Lua step) when
the user's decision is accepted.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Final

from jwtauth.store.pepper import Pepper, Unsealed
from jwtauth.store.redisclient import RedisClient, checked_prefix, ms, tagged_key, text

REQUEST_URI_PREFIX: Final = "urn:ietf:params:oauth:request_uri:"
_REFERENCE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
LABEL: Final = "pushed request"

# KEYS: request. ARGV: ttl_ms, client_id, exp, data.
_PUSH = """
redis.call('HSET', KEYS[1], 'client', ARGV[2], 'exp', ARGV[3], 'data', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
"""

# KEYS: request. ARGV: client_id, now. Delete and return the parameters if live and the client's.
_TAKE = """
local r = redis.call('HMGET', KEYS[1], 'client', 'exp', 'data')
if not r[1] or r[1] ~= ARGV[1] or tonumber(ARGV[2]) >= tonumber(r[2]) then return false end
redis.call('DEL', KEYS[1])
return r[3]
"""


class PushedRequests:
    """Store pushed authorization requests (standalone Redis, Sentinel or Cluster)."""

    def __init__(self, client: RedisClient, *, pepper: Pepper, prefix: str = "jwtauth:") -> None:
        self._redis, self._prefix = client, checked_prefix(prefix)
        self._pepper = pepper
        self._push = client.register_script(_PUSH)
        self._take = client.register_script(_TAKE)

    def push(self, client_id: str, params: dict[str, str], *, ttl: float, now: float) -> str:
        """Store the parameters and return a new request_uri (256 random bits, RFC 9126 §2.2)."""
        reference = secrets.token_urlsafe(32)
        data = json.dumps(params, separators=(",", ":"), sort_keys=True)
        digest = _digest(reference)  # the key's name and what its parameters are sealed to
        data = self._pepper.seal(LABEL, data, digest)
        self._push(keys=[self._key(digest)], args=[str(ms(ttl)), client_id, repr(now + ttl), data])
        return REQUEST_URI_PREFIX + reference

    def peek(self, request_uri: str, *, client_id: str, now: float) -> dict[str, str] | None:
        """Return the pushed parameters if the request is live and `client_id`'s, else None."""
        reference = _reference(request_uri)
        if reference is None:
            return None
        digest = _digest(reference)
        owner, exp, data = self._redis.hmget(self._key(digest), ["client", "exp", "data"])
        if owner is None or exp is None or data is None:
            return None
        # RFC 9126 §4: the request_uri is bound to the client that pushed it.
        if text(owner) != client_id or now >= float(text(exp)):
            return None
        return self._decode(digest, text(data))

    def take(self, request_uri: str, *, client_id: str, now: float) -> dict[str, str] | None:
        """Consume the request atomically: its parameters once, None afterwards (RFC 9126 §4)."""
        reference = _reference(request_uri)
        if reference is None:
            return None
        digest = _digest(reference)
        reply = self._take(keys=[self._key(digest)], args=[client_id, repr(now)])
        return self._decode(digest, text(reply)) if reply else None

    def _key(self, digest: str) -> str:
        return tagged_key(self._prefix, "par", digest)

    def _decode(self, digest: str, data: str) -> dict[str, str] | None:
        try:
            return _decode(self._pepper.open(LABEL, data, digest))
        except Unsealed:
            return None


def _digest(reference: str) -> str:
    return hashlib.sha256(reference.encode()).hexdigest()


def _reference(request_uri: str) -> str | None:
    reference = request_uri.removeprefix(REQUEST_URI_PREFIX)
    if reference == request_uri or not _REFERENCE.fullmatch(reference):
        return None
    return reference


def _decode(data: str) -> dict[str, str]:
    params: dict[str, str] = json.loads(data)
    return params
