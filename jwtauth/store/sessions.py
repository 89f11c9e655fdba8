"""Keep what must be revocable about browser sessions: ended sessions and per-user "not before".

A session itself lives in its signed cookie (jwtauth.oidc.session); Redis only learns of it when
it ends. Key layout (both keys of one user share the hash tag `{ses:<hmac(username)>}`, so
one MGET checks a session in one round trip, Cluster included):

    {prefix}{ses:<hmac(username)>}:end:<sha256(sid)>   "1": this session was logged out
    {prefix}{ses:<hmac(username)>}:nb                  epoch seconds: sessions that signed in
                                                       before it are over ("log out everywhere")
    {prefix}{ses:<hmac(username)>}:grants:<sha256(sid)>
                                                       sorted set: the grants made in this
                                                       session (refresh families, and codes not
                                                       yet redeemed), scored by the latest each
                                                       can end, which its logout revokes or bars
    {prefix}{ses:<hmac(username)>}:fam:<sha256(sid)>   set: 0.1.0's families of the session, read
                                                       at logout until they have all expired

The HMAC is keyed with the pepper (jwtauth.store.pepper), so a dump cannot confirm a guessed
username. Marks from before the pepper need no fallback: the cookies they could end were MACed
under the signing key, and jwtauth.oidc.session no longer reads those.

Each marker lives exactly as long as the sessions it can end: the session lifetime. A grant's
entry goes once the grant cannot be alive any more (trimmed whenever another is added), so a
session that signs in silently every few minutes does not pile up the codes it redeemed.
"""

from __future__ import annotations

import hashlib

from jwtauth.store.pepper import Pepper
from jwtauth.store.redisclient import RedisClient, ScriptCall, checked_prefix, ms, tagged_key, text
from jwtauth.store.refresh_scripts import INDEX_LUA

LABEL = "session marks"

# The same step as a subject's refresh index, its key's life capped at the session's.
# KEYS: the session's grants. ARGV: now (epoch seconds), the latest the grant can end, grant id,
# the session lifetime in ms.
_LINK = INDEX_LUA + "index_family(KEYS[1], 1, tonumber(ARGV[4]))\nreturn 1\n"

# KEYS: the session's grants, its families as 0.1.0 kept them. ARGV: now.
_GRANTS = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do ids[#ids + 1] = id end
return ids
"""


class SessionMarks:
    """Mark browser sessions ended, one at a time or every session of a user."""

    def __init__(
        self, client: RedisClient, *, pepper: Pepper, prefix: str = "jwtauth:", session_ttl: float
    ) -> None:
        self._redis = client
        self._pepper = pepper
        self._prefix = checked_prefix(prefix)
        self._ttl = session_ttl
        self._link = client.register_script(_LINK)
        self._grants = client.register_script(_GRANTS)

    def live(self, username: str, sid: str, auth_time: float) -> bool:
        """Tell whether a session neither ended nor signed in before the user's "not before"."""
        base = self._user(username)
        ended, not_before = self._redis.mget([f"{base}:end:{_digest(sid)}", f"{base}:nb"])
        if ended is not None:
            return False
        return not_before is None or auth_time >= float(text(not_before))

    def end(self, username: str, sid: str) -> None:
        """Mark one session ended (a copied cookie dies with the one the user logged out)."""
        key = f"{self._user(username)}:end:{_digest(sid)}"
        self._redis.set(key, b"1", px=ms(self._ttl))

    def end_all(self, username: str, *, now: float) -> None:
        """End every session of `username` that signed in up to `now` ("log out everywhere")."""
        # auth_time is whole seconds: every session of this second ends, the next second's live.
        self._redis.set(f"{self._user(username)}:nb", str(int(now) + 1).encode(), px=ms(self._ttl))

    def linking(self, username: str, sid: str, grant_id: str, *, until: float, now: float) -> ScriptCall:
        """Return the call that records a grant as this session's, for another's round trip.

        `grant_id`: a refresh family's id, or the id a code's grant is barred by; `until`: the
        latest it can end. /authorize runs it in the code's round trip, and the two-trip code
        exchange in RefreshStore.create's, so no grant is made without its logout knowing of it.
        """
        args = [repr(now), repr(until), grant_id, str(ms(self._ttl))]
        return (self._link, [self._session_key(username, sid, "grants")], args)

    def grants(self, username: str, sid: str, *, now: float) -> list[str]:
        """Return the grants made in this session that may still be alive."""
        keys = [self._session_key(username, sid, "grants"), self._session_key(username, sid, "fam")]
        return sorted({text(member) for member in self._grants(keys=keys, args=[repr(now)])})

    def _session_key(self, username: str, sid: str, kind: str) -> str:
        return f"{self._user(username)}:{kind}:{_digest(sid)}"

    def _user(self, username: str) -> str:
        # Keyed: the key name is visible to anyone who can SCAN; the username must not be guessable.
        return tagged_key(self._prefix, "ses", self._pepper.digest(LABEL, username))


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()
