"""Keep authorization codes in Redis: issue, take exactly once, detect a second redemption.

Key layout (both keys of one code share the hash tag `{c:<sha256(code)>}`):

    {prefix}{c:<sha256(code)>}        hash: client, exp, ttl, data (the CodeRecord as JSON), chal
    {prefix}{c:<sha256(code)>}:used   hash: client, chal, family (bound later), replayed
    {prefix}{s:<sha256(submission)>}  string: a consent submission already used (issue 18)

Only the SHA-256 of a code is stored: a code is 256 random bits, so the digest cannot be
turned back into a code, and a dump of Redis redeems nothing. `data` (the user, nonce, session
id…) is sealed under a pepper-derived key and bound to the code's digest, so a dump names no
user and a record moved to another code does not open (jwtauth.store.pepper); a clear JSON
record written before that is still read until it expires.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from jwtauth.store.pepper import Pepper, Unsealed
from jwtauth.store.redisclient import RedisClient, ScriptCall, checked_prefix, ms, tagged_key, text

_CODE = re.compile(r"[A-Za-z0-9_-]{43}")
LABEL = "code record"

# KEYS[k]: code. ARGV[a..a+5]: ttl_ms, client, exp, ttl, data, PKCE challenge ('' if none).
_ISSUE_LUA = """
local function issue_code(k, a)
  redis.call('HSET', KEYS[k], 'client', ARGV[a + 1], 'exp', ARGV[a + 2], 'ttl', ARGV[a + 3],
             'data', ARGV[a + 4], 'chal', ARGV[a + 5])
  redis.call('PEXPIRE', KEYS[k], ARGV[a])
end
"""
_ISSUE = _ISSUE_LUA + "issue_code(1, 1)\n"

# Take a code atomically: of any number of concurrent redemptions exactly one sees the record.
# A second redemption counts as a replay (and revokes) only from a presenter that proves it is
# the client: authenticated (ARGV[5] = '1'), or the S256 of its verifier equals the challenge
# (issue 18: a thief of a public client's code must not log the user out). Digests of 256-bit
# verifiers are compared with ==: timing reveals nothing usable about a preimage.
# KEYS: code, used marker. ARGV: client_id, now, access-token lifetime in seconds, S256 of the
# presented verifier ('' if none), '1' if the client authenticated.
_TAKE = """
local m = redis.call('HMGET', KEYS[2], 'client', 'family', 'chal')
if m[1] then
  if m[1] ~= ARGV[1] then return {'wrong_client'} end
  local proven = ARGV[5] == '1' or (m[3] ~= false and m[3] ~= '' and m[3] == ARGV[4])
  if not proven then return {'unproven_reuse'} end
  redis.call('HSET', KEYS[2], 'replayed', '1')
  return {'already_used', m[2] or ''}
end
local c = redis.call('HMGET', KEYS[1], 'client', 'exp', 'ttl', 'data', 'chal')
if not c[1] then return {'unknown'} end
if tonumber(ARGV[2]) >= tonumber(c[2]) then
  redis.call('DEL', KEYS[1])
  return {'unknown'}
end
if c[1] ~= ARGV[1] then return {'wrong_client'} end
local ms = math.max(math.ceil((tonumber(c[3]) + tonumber(ARGV[3])) * 1000), 1)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'client', ARGV[1], 'chal', c[5] or '')
redis.call('PEXPIRE', KEYS[2], string.format('%d', ms))
return {'ok', c[4]}
"""

# Bind the family issued from a code to its used marker; 0 if a replay was already seen.
# KEYS: used marker. ARGV: family id.
_BIND = """
local m = redis.call('HMGET', KEYS[1], 'client', 'replayed')
if not m[1] then return 0 end
redis.call('HSET', KEYS[1], 'family', ARGV[1])
if m[2] then return 0 end
return 1
"""


class TakeStatus(enum.Enum):
    """Outcome of redeeming an authorization code."""

    OK = "ok"
    ALREADY_USED = "already_used"
    UNPROVEN_REUSE = "unproven_reuse"  # used, but the presenter did not prove it is the client
    WRONG_CLIENT = "wrong_client"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CodeRecord:
    """What the authorization step decided, carried to the token request by the code."""

    client_id: str
    redirect_uri: str | None
    scope: str
    subject: str
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: float
    audience: tuple[str, ...] = ()
    dpop_jkt: str | None = None  # RFC 9449 §10: the key the token request must prove
    nonce: str | None = None  # OpenID Connect Core §3.1.2.1: into the id_token of the exchange
    amr: tuple[str, ...] = ()  # how the user authenticated (RFC 8176)
    sid: str | None = None  # the browser session (Back-Channel Logout §2.1)


@dataclass(frozen=True)
class TakeResult:
    """Result of `CodeStore.take`: the record on OK, the bound family on ALREADY_USED."""

    status: TakeStatus
    record: CodeRecord | None = None
    family_id: str | None = None


class CodeStore:
    """Store authorization codes in Redis (standalone, Sentinel or Cluster)."""

    def __init__(
        self,
        client: RedisClient,
        *,
        pepper: Pepper,
        prefix: str = "jwtauth:",
        access_token_ttl: float = 3600.0,
    ) -> None:
        self._pepper = pepper
        self._prefix = checked_prefix(prefix)
        # The used marker outlives the code by the access-token lifetime, so a late second
        # redemption still finds the family whose tokens must be revoked (RFC 6749 §4.1.2).
        self._access_ttl = access_token_ttl
        self._redis = client
        self._issue = client.register_script(_ISSUE)
        self._take = client.register_script(_TAKE)
        self._bind = client.register_script(_BIND)

    def issue(self, record: CodeRecord, *, ttl: float, now: float) -> str:
        """Store `record` under a new code valid for `ttl` seconds and return the code."""
        code, args = self._new(record, ttl, now)
        self._issue(keys=[self._key(code)], args=args)
        return code

    def claim(self, submission: str, *, ttl: float) -> bool:
        """Mark a consent `submission` used for `ttl` seconds; False if it already was (issue 18)."""
        return bool(self._redis.set(self._submission_key(submission), b"1", nx=True, px=ms(ttl)))

    def _new(self, record: CodeRecord, ttl: float, now: float) -> tuple[str, list[str]]:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        code = secrets.token_urlsafe(32)
        data = json.dumps(dataclasses.asdict(record), separators=(",", ":"))
        data = self._pepper.seal(LABEL, data, _digest(code))
        challenge = record.code_challenge or ""
        return code, [str(ms(ttl)), record.client_id, repr(now + ttl), repr(float(ttl)), data, challenge]

    def _submission_key(self, submission: str) -> str:
        return tagged_key(self._prefix, "s", hashlib.sha256(submission.encode()).hexdigest())

    def peek(self, code: str, *, client_id: str, now: float) -> CodeRecord | None:
        """Return the record of a live, unused code issued to `client_id`, without consuming it.

        The caller checks PKCE, redirect_uri and resource against it BEFORE `take`, so a request
        that fails them (a thief without the verifier) cannot burn the code. A record never
        changes once issued, so what `peek` saw is what `take` consumes; `take` alone decides,
        atomically, who redeems it.
        """
        if not _CODE.fullmatch(code):
            return None
        owner, exp, data = self._redis.hmget(self._key(code), ["client", "exp", "data"])
        if owner is None or exp is None or data is None:
            return None
        if text(owner) != client_id or now >= float(text(exp)):
            return None
        return self._decode(code, text(data))

    def take(
        self, code: str, *, client_id: str, now: float, proof: str | None = None, authenticated: bool = True
    ) -> TakeResult:
        """Redeem `code` for `client_id`: OK once, ALREADY_USED afterwards.

        RFC 6749 §4.1.3: the code must have been issued to the authenticated client. A code
        presented by another client is refused but NOT burned, so a client that learns a
        victim's code cannot destroy it; it cannot redeem it either. Checks that could fail for
        the request (PKCE, redirect_uri) belong before the take, on the record `peek` returns.

        A used code is ALREADY_USED (a replay: revoke) only if the presenter proves it is the
        client: `authenticated` (a confidential client), or `proof`, the S256 of the presented
        verifier, equals the code's challenge; otherwise UNPROVEN_REUSE, and nothing changes.
        """
        if not _CODE.fullmatch(code):
            return TakeResult(TakeStatus.UNKNOWN)
        key = self._key(code)
        args = [client_id, repr(now), repr(self._access_ttl), proof or "", "1" if authenticated else "0"]
        reply = self._take(keys=[key, f"{key}:used"], args=args)
        status = TakeStatus(text(reply[0]))
        if status is TakeStatus.OK:
            record = self._decode(code, text(reply[1]))
            # Taken but unreadable (another pepper, or moved from another code): nothing to issue.
            return TakeResult(status, record=record) if record is not None else TakeResult(TakeStatus.UNKNOWN)
        if status is TakeStatus.ALREADY_USED:
            # RFC 6749 §4.1.2: deny, and the caller SHOULD revoke tokens issued from the code.
            return TakeResult(status, family_id=text(reply[1]) or None)
        return TakeResult(status)

    def binding(self, code: str, family_id: str) -> ScriptCall:
        """Return the call that binds a family to a code `take` accepted, for another's trip.

        The code grant runs it in RefreshStore.create's round trip, right after the family
        exists. Its reply is 1 when bound; 0 when a second redemption already arrived between
        `take` and the bind (it could not learn the family yet) or the marker is gone: the
        caller must then revoke `family_id` itself (RFC 6749 §4.1.2).
        """
        return (self._bind, [f"{self._key(code)}:used"], [family_id])

    def _key(self, code: str) -> str:
        return tagged_key(self._prefix, "c", _digest(code))

    def _decode(self, code: str, data: str) -> CodeRecord | None:
        try:
            return _decode(self._pepper.open(LABEL, data, _digest(code)))
        except Unsealed:
            return None


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _decode(data: str) -> CodeRecord:
    fields: dict[str, Any] = json.loads(data)
    fields["audience"] = tuple(fields["audience"])
    fields["amr"] = tuple(fields.get("amr", ()))
    return CodeRecord(**fields)
