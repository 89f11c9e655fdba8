"""Keep refresh-token families in Redis: rotate, detect replay and reuse, revoke.

A refresh token is `<family_id>.<secret>` (both base64url, no padding). One family is one
grant: every rotation replaces the secret and keeps the family. Redis holds only SHA-256
digests of secrets plus a per-rotation nonce, so nothing it stores is usable as a token.

Key layout (every key of one family shares the hash tag `{f:<family_id>}`):

    {prefix}{f:<id>}           hash: client, subject, scope, audience, auth_time, created,
                               abs_exp, idle_exp, gen, cur, prev, nonce, rotated_at, and jkt
                               for a family bound to a DPoP key (RFC 9449 §5)
    {prefix}{f:<id>}:used      list: digests of rotated-out secrets, newest first, capped
    {prefix}{f:<id>}:revoked   string: tombstone left by revocation or reuse detection
    {prefix}{s:<sha256(sub)>}  sorted set: family ids of one subject, scored by absolute expiry

Successor secrets are HMAC-SHA256(key=presented secret, msg=label|family_id|nonce). The nonce
is random per rotation and stored; the presented secret is not. So a client retrying a
rotation whose response it lost recomputes exactly the same successor (REPLAY), while Redis
alone cannot compute it. The nonce is drawn before Redis is asked, so the candidate successor
travels with the rotation itself: one round trip per rotation.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias

import redis
from redis.exceptions import NoScriptError

from jwtauth.store.limits import GUARD_LUA, Guard, Verdict
from jwtauth.store.redisclient import ScriptCall

if TYPE_CHECKING:
    from redis import Redis
    from redis.cluster import RedisCluster

    # Clients are created with decode_responses=False; replies are decoded here.
    RedisClient: TypeAlias = Redis | RedisCluster

_FAMILY_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_KDF_LABEL = b"jwtauth-refresh-v2"
# Successors issued before the generation left the message; still re-derived on REPLAY so a
# client retrying across a rolling deploy gets the successor an older process issued.
_KDF_LABEL_V1 = b"jwtauth-refresh-v1"

# Create a family hash and give it its TTL in one step, so no key ever lives without a TTL.
# KEYS: family. ARGV: ttl_ms, field1, value1, field2, value2, ...
_CREATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
"""

# Add a family to its subject's index and drop members past their absolute expiry, so the
# index stays as small as the set of families that can still be alive. TTL = latest expiry.
# KEYS: subject index. ARGV: now, absolute expiry, family id.
_INDEX = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local top = redis.call('ZRANGE', KEYS[1], '-1', '-1', 'WITHSCORES')
local ms = math.ceil((tonumber(top[2]) - tonumber(ARGV[1])) * 1000)
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(ms, 1)))
"""

# Start a family only while no failure counter is locked: the password grant's usual sign-in
# (a password this process already proved) in one round trip, atomically, so a locked-out
# user's right password creates nothing and is refused like a wrong one (RFC 6749 §4.3.2).
# The bodies are _INDEX and _CREATE on shifted KEYS and ARGV.
# KEYS: subject index, family, then the guard's counters.
# ARGV: 1-3 the guard's (now, max failures, window), 4 now, 5 absolute expiry, 6 family id,
#       7 ttl_ms, 8.. field1, value1, field2, value2, ...
_GUARDED_CREATE = GUARD_LUA + """
local g = failure_guard(3, 1)
if g[1] > 0 then return g end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[5], ARGV[6])
local top = redis.call('ZRANGE', KEYS[1], '-1', '-1', 'WITHSCORES')
local ms = math.ceil((tonumber(top[2]) - tonumber(ARGV[4])) * 1000)
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(ms, 1)))
redis.call('HSET', KEYS[2], unpack(ARGV, 8))
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return g
"""

# Decide one rotation atomically and return what the caller needs, so a rotation is one round
# trip. Digests are compared with == because they are SHA-256 of 256-bit secrets: timing
# reveals nothing usable about a preimage.
# KEYS: family, used list, tombstone.
# ARGV: 1 presented digest, 2 client_id, 3 now, 4 grace seconds, 5 idle ttl,
#       6 candidate successor digest, 7 nonce, 8 used_history - 1, 9 tombstone ttl ms,
#       10 tombstone value, 11 the thumbprint of the request's DPoP key ('' without a proof)
# Reply for ok and replay: status, gen, idle_exp, subject, scope, audience, auth_time, created,
# abs_exp, then for replay only the stored nonce and current digest.
_ROTATE = """
local f = redis.call('HMGET', KEYS[1], 'client', 'cur', 'prev', 'gen', 'abs_exp', 'idle_exp',
                     'rotated_at', 'nonce', 'subject', 'scope', 'audience', 'auth_time',
                     'created', 'jkt')
if not f[1] then return {'unknown'} end
local now = tonumber(ARGV[3])
local abs_exp = tonumber(f[5])
if now >= abs_exp or now >= tonumber(f[6]) then return {'unknown'} end
local h = ARGV[1]
local kind
if h == f[2] then kind = 'cur'
elseif h == f[3] then kind = 'prev'
elseif redis.call('LPOS', KEYS[2], h) then kind = 'used'
else return {'unknown'} end
-- RFC 6749 §6, §10.4: the token is bound to its client. Checked before reuse detection, so
-- another client holding a leaked token can neither rotate nor revoke the owner's family.
if f[1] ~= ARGV[2] then return {'wrong_client'} end
-- RFC 9449 §5: a public client's family is bound to its DPoP key; checked before reuse
-- detection too, so a thief without the key can neither rotate nor revoke it.
if f[14] and f[14] ~= ARGV[11] then return {'wrong_key'} end
if kind == 'cur' then
  local gen = tostring(tonumber(f[4]) + 1)
  local idle = math.min(now + tonumber(ARGV[5]), abs_exp)
  local idle_s = string.format('%.17g', idle)
  local ms = string.format('%d', math.max(math.ceil((idle - now) * 1000), 1))
  redis.call('HSET', KEYS[1], 'cur', ARGV[6], 'prev', h, 'gen', gen, 'nonce', ARGV[7],
             'rotated_at', ARGV[3], 'idle_exp', idle_s)
  redis.call('LPUSH', KEYS[2], h)
  redis.call('LTRIM', KEYS[2], '0', ARGV[8])
  redis.call('PEXPIRE', KEYS[1], ms)
  redis.call('PEXPIRE', KEYS[2], ms)
  return {'ok', gen, idle_s, f[9], f[10], f[11], f[12], f[13], f[5]}
end
-- The same call sent again (redis-py's retry after a reply lost with its connection) carries
-- this rotation's own nonce: a replay whatever the grace period, never reuse.
if kind == 'prev' and (f[8] == ARGV[7] or now - tonumber(f[7]) < tonumber(ARGV[4])) then
  return {'replay', f[4], f[6], f[9], f[10], f[11], f[12], f[13], f[5], f[8], f[2]}
end
-- RFC 9700 §4.14.2: a rotated-out secret seen again means a token leaked; attacker and
-- victim cannot be told apart, so the whole family dies, the newest token included.
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[10], 'PX', ARGV[9])
return {'reuse'}
"""

# Revoke one family if it exists and the optional secret and owner checks pass.
# KEYS: family, used list, tombstone.
# ARGV: 1 check secret ('1'/'0'), 2 digest, 3 check client ('1'/'0'), 4 client_id,
#       5 tombstone ttl ms, 6 tombstone value
_REVOKE = """
local f = redis.call('HMGET', KEYS[1], 'client', 'cur', 'prev')
if not f[1] then return 0 end
if ARGV[1] == '1' and ARGV[2] ~= f[2] and ARGV[2] ~= f[3]
   and not redis.call('LPOS', KEYS[2], ARGV[2]) then
  return 0
end
if ARGV[3] == '1' and ARGV[4] ~= f[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[5])
return 1
"""


class RotationStatus(enum.Enum):
    """Outcome of presenting a refresh token for rotation."""

    OK = "ok"
    REPLAY = "replay"
    REUSE = "reuse"
    WRONG_CLIENT = "wrong_client"
    WRONG_KEY = "wrong_key"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FamilyRecord:
    """The grant a refresh-token family stands for, as of its current generation."""

    family_id: str
    client_id: str
    subject: str
    scope: str
    audience: tuple[str, ...]
    auth_time: float
    created: float
    absolute_expiry: float
    idle_expiry: float
    generation: int


@dataclass(frozen=True)
class IssuedRefresh:
    """A new family's first refresh token."""

    token: str
    family_id: str
    generation: int
    # The replies of the steps `create` ran after the family in the same round trip (`then`).
    after: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Rotation:
    """Result of `RefreshStore.rotate`; `token` and `family` are set for OK and REPLAY."""

    status: RotationStatus
    family_id: str | None = None
    token: str | None = None
    family: FamilyRecord | None = None


class RefreshStore:
    """Store refresh-token families in Redis (standalone, Sentinel or Cluster)."""

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "jwtauth:",
        grace_seconds: float = 5.0,
        used_history: int = 1000,
        revoked_ttl: float = 3600.0,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("prefix must not contain '{' or '}': it would change the hash tag")
        if used_history < 1 or grace_seconds < 0 or revoked_ttl <= 0:
            raise ValueError("used_history >= 1, grace_seconds >= 0 and revoked_ttl > 0")
        self._client = client
        self._prefix = prefix
        self._grace = grace_seconds
        self._history = used_history
        # Longer than any access token: introspection reports the family's access tokens
        # inactive while the tombstone lives (RFC 9700 §4.14.2, RFC 7009 §2.1).
        self._revoked_ms = _ms(revoked_ttl)
        self._create = client.register_script(_CREATE)
        self._index = client.register_script(_INDEX)
        self._rotate = client.register_script(_ROTATE)
        self._revoke = client.register_script(_REVOKE)
        self._guarded_create = client.register_script(_GUARDED_CREATE)

    def create(
        self,
        *,
        client_id: str,
        subject: str,
        scope: str,
        audience: Sequence[str],
        auth_time: float,
        now: float,
        absolute_ttl: float,
        idle_ttl: float,
        then: Callable[[str], Sequence[ScriptCall]] | None = None,
        jkt: str | None = None,
    ) -> IssuedRefresh:
        """Start a new family and return its first token (generation 1).

        `then(family_id)` names idempotent script calls of another store to run right after
        the family exists, in the same round trip where a pipeline can carry them; their
        replies come back in `IssuedRefresh.after`. `jkt` binds the family to a DPoP key.
        """
        issued, index_args, create_args = self._new_family(
            client_id=client_id, subject=subject, scope=scope, audience=audience,
            auth_time=auth_time, now=now, absolute_ttl=absolute_ttl, idle_ttl=idle_ttl, jkt=jkt,
        )
        # Index first: a crash in between leaves a dangling index entry (harmless), never a
        # family that "log out everywhere" cannot find.
        extra = tuple(then(issued.family_id)) if then is not None else ()
        replies = _in_order(
            self._client,
            (self._index, [self._subject_key(subject)], index_args),
            (self._create, [self._family_key(issued.family_id)], create_args),
            *extra,
        )
        return replace(issued, after=tuple(replies[2:])) if extra else issued

    def create_guarded(
        self,
        guard: Guard,
        *,
        client_id: str,
        subject: str,
        scope: str,
        audience: Sequence[str],
        auth_time: float,
        now: float,
        absolute_ttl: float,
        idle_ttl: float,
    ) -> tuple[IssuedRefresh | None, Verdict] | None:
        """Start a family unless `guard` says locked, in one round trip; None if unsupported.

        Returns the family (None while locked: nothing was written) and the guard's verdict.
        Only on standalone Redis and Sentinel: on Cluster the counters and the family live in
        different slots, which one script may not touch; the caller checks, then `create`s.
        """
        if not isinstance(self._client, redis.Redis):
            return None
        issued, index_args, create_args = self._new_family(
            client_id=client_id, subject=subject, scope=scope, audience=audience,
            auth_time=auth_time, now=now, absolute_ttl=absolute_ttl, idle_ttl=idle_ttl,
        )
        keys = [self._subject_key(subject), self._family_key(issued.family_id), *guard.keys]
        reply = self._guarded_create(keys=keys, args=[*guard.args, *index_args, *create_args])
        verdict = guard.verdict(reply)
        return (None if verdict[0] is not None else issued), verdict

    def _new_family(
        self,
        *,
        client_id: str,
        subject: str,
        scope: str,
        audience: Sequence[str],
        auth_time: float,
        now: float,
        absolute_ttl: float,
        idle_ttl: float,
        jkt: str | None = None,
    ) -> tuple[IssuedRefresh, list[str], list[str]]:
        """Draw a family id and first secret; return them with the _INDEX and _CREATE ARGV."""
        if absolute_ttl <= 0 or idle_ttl <= 0:
            raise ValueError("absolute_ttl and idle_ttl must be positive")
        if isinstance(audience, str):
            raise TypeError("audience is a sequence of strings, not a string")
        family_id = _b64(secrets.token_bytes(16))
        secret = secrets.token_bytes(32)
        abs_exp = now + absolute_ttl
        idle_exp = min(now + idle_ttl, abs_exp)
        fields = {
            "client": client_id,
            "subject": subject,
            "scope": scope,
            "audience": json.dumps(list(audience)),
            "auth_time": repr(float(auth_time)),
            "created": repr(float(now)),
            "abs_exp": repr(abs_exp),
            "idle_exp": repr(idle_exp),
            "gen": "1",
            "cur": _digest(secret),
        }
        if jkt is not None:
            fields["jkt"] = jkt
        args: list[str] = [str(_ms(idle_exp - now))]
        for name, value in fields.items():
            args += [name, value]
        issued = IssuedRefresh(token=f"{family_id}.{_b64(secret)}", family_id=family_id, generation=1)
        return issued, [repr(now), repr(abs_exp), family_id], args

    def rotate(
        self, token: str, *, client_id: str, now: float, idle_ttl: float, jkt: str | None = None
    ) -> Rotation:
        """Exchange the current secret for its successor, or detect replay and reuse.

        `jkt`: the request's DPoP key; a family bound to another key (or to one, without
        it) answers WRONG_KEY and changes nothing.
        """
        if idle_ttl <= 0:
            raise ValueError("idle_ttl must be positive")
        parsed = _parse(token)
        if parsed is None:
            return Rotation(RotationStatus.UNKNOWN)
        family_id, secret = parsed
        # The nonce is drawn first so the candidate successor goes with the one script call;
        # Lua has no SHA-256, and Redis must never see the presented secret itself.
        nonce = secrets.token_hex(16)
        successor = _successor(secret, family_id, nonce)
        reply = self._rotate(
            keys=self._family_keys(family_id),
            args=[
                _digest(secret),
                client_id,
                repr(now),
                repr(self._grace),
                repr(idle_ttl),
                _digest(successor),
                nonce,
                str(self._history - 1),
                str(self._revoked_ms),
                f"reuse {now!r}",
                jkt or "",
            ],
        )
        status = RotationStatus(_text(reply[0]))
        if status is RotationStatus.OK:
            family = _rotated_record(family_id, client_id, reply)
            return Rotation(status, family_id, f"{family_id}.{_b64(successor)}", family)
        if status is RotationStatus.REPLAY:
            # RFC 9700 §4.14.2 allows a short grace period for a lost response: hand back the
            # successor already issued (derived again, identical), never a second live one.
            family = _rotated_record(family_id, client_id, reply)
            again = _replayed(secret, family_id, family.generation, _text(reply[9]), _text(reply[10]))
            return Rotation(status, family_id, f"{family_id}.{_b64(again)}", family)
        return Rotation(status, family_id)

    def lookup(self, token: str, *, now: float) -> FamilyRecord | None:
        """Return the family if `token` carries its current secret and it has not expired."""
        parsed = _parse(token)
        if parsed is None:
            return None
        family_id, secret = parsed
        fields = self._client.hgetall(self._family_key(family_id))
        if not fields or not hmac.compare_digest(_text(fields[b"cur"]), _digest(secret)):
            return None
        record = _record(family_id, fields)
        if now >= record.absolute_expiry or now >= record.idle_expiry:
            return None
        return record

    def revoke(self, family_id_or_token: str, *, client_id: str | None = None, now: float) -> bool:
        """Delete a family and leave a tombstone; return whether a family was revoked.

        A token must carry a secret the family issued (current or rotated-out), so a guessed
        family id with a made-up secret revokes nothing. A bare family id is for callers that
        already hold proof (an access token's family claim, an administrator). With
        `client_id`, only the owner may revoke (RFC 7009 §2.1): another client is refused.
        """
        if "." in family_id_or_token:
            parsed = _parse(family_id_or_token)
            if parsed is None:
                return False
            family_id, digest = parsed[0], _digest(parsed[1])
        elif _FAMILY_ID.fullmatch(family_id_or_token):
            family_id, digest = family_id_or_token, ""
        else:
            return False
        return self._revoke_family(family_id, digest=digest, client_id=client_id, now=now)

    def is_revoked(self, family_id: str) -> bool:
        """Return whether the family was revoked recently enough that its tombstone lives."""
        if not _FAMILY_ID.fullmatch(family_id):
            return False
        return bool(self._client.exists(self._family_keys(family_id)[2]))

    def revoke_all(self, *, subject: str | None = None, client_id: str | None = None) -> int:
        """Revoke every family of a subject and/or client ("log out everywhere"); count them.

        With a subject, the per-subject index is read: cost is that subject's families.
        With only a client, the keyspace is SCANned for family hashes: cost is every key under
        the prefix, so keep that for incidents (a compromised client). On Redis Cluster,
        redis-py's `RedisCluster.scan_iter` runs SCAN on every primary, so no family is missed.
        """
        if subject is None and client_id is None:
            raise ValueError("revoke_all needs a subject, a client_id or both")
        if subject is not None:
            index = self._subject_key(subject)
            family_ids = [_text(member) for member in self._client.zrange(index, 0, -1)]
        else:
            pattern = _glob_escape(self._prefix) + "{f:*}"
            start = len(self._prefix) + 3
            family_ids = [
                _text(key)[start:-1]
                for key in self._client.scan_iter(match=pattern, count=1000, _type="hash")
            ]
        revoked = [
            family_id
            for family_id in family_ids
            if _FAMILY_ID.fullmatch(family_id)
            and self._revoke_family(family_id, digest="", client_id=client_id, now=None)
        ]
        if subject is not None and revoked:
            self._client.zrem(self._subject_key(subject), *revoked)
        return len(revoked)

    def _revoke_family(
        self, family_id: str, *, digest: str, client_id: str | None, now: float | None
    ) -> bool:
        reason = "revoked" if now is None else f"revoked {now!r}"
        reply = self._revoke(
            keys=self._family_keys(family_id),
            args=[
                "1" if digest else "0",
                digest,
                "0" if client_id is None else "1",
                client_id or "",
                str(self._revoked_ms),
                reason,
            ],
        )
        return bool(reply)

    def _family_key(self, family_id: str) -> str:
        return f"{self._prefix}{{f:{family_id}}}"

    def _family_keys(self, family_id: str) -> list[str]:
        family = self._family_key(family_id)
        return [family, f"{family}:used", f"{family}:revoked"]

    def _subject_key(self, subject: str) -> str:
        # Hashed: the key name is visible to anyone who can SCAN; the subject need not be.
        return f"{self._prefix}{{s:{hashlib.sha256(subject.encode()).hexdigest()}}}"


def _in_order(client: Any, *calls: ScriptCall) -> list[Any]:
    """Run idempotent scripts in this order, in one round trip where a pipeline can carry them.

    Redis runs a pipeline's commands in order on one connection, so the order holds either way.
    Redis Cluster cannot pipeline scripts of different slots (redis-py refuses EVALSHA in a
    cluster pipeline): there they run one after another, as they do after NOSCRIPT (a restart or
    failover emptied the script cache), through the scripts, which load themselves. Running a
    script again sets the same values, so a partial first attempt does no harm.
    """
    if isinstance(client, redis.Redis):  # standalone or Sentinel
        pipe = client.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        try:
            return list(pipe.execute())
        except NoScriptError:
            pass
    return [script(keys=keys, args=args) for script, keys, args in calls]


def _record(family_id: str, fields: dict[Any, Any]) -> FamilyRecord:
    def text(name: str) -> str:
        return _text(fields[name.encode()])

    return FamilyRecord(
        family_id=family_id,
        client_id=text("client"),
        subject=text("subject"),
        scope=text("scope"),
        audience=tuple(json.loads(text("audience"))),
        auth_time=float(text("auth_time")),
        created=float(text("created")),
        absolute_expiry=float(text("abs_exp")),
        idle_expiry=float(text("idle_exp")),
        generation=int(text("gen")),
    )


def _rotated_record(family_id: str, client_id: str, reply: Sequence[Any]) -> FamilyRecord:
    """Build the family as the rotation script returned it (OK and REPLAY share the layout)."""
    return FamilyRecord(
        family_id=family_id,
        client_id=client_id,  # the script refused any other client
        subject=_text(reply[3]),
        scope=_text(reply[4]),
        audience=tuple(json.loads(_text(reply[5]))),
        auth_time=float(_text(reply[6])),
        created=float(_text(reply[7])),
        absolute_expiry=float(_text(reply[8])),
        idle_expiry=float(_text(reply[2])),
        generation=int(_text(reply[1])),
    )


def _replayed(secret: bytes, family_id: str, generation: int, nonce: str, current: str) -> bytes:
    """Re-derive the successor already issued for `secret`; it must be the family's current one."""
    again = _successor(secret, family_id, nonce)
    if hmac.compare_digest(_digest(again), current):
        return again
    # Issued before this derivation (rolling deploy): the generation was in the message.
    legacy = _successor_v1(secret, family_id, generation, nonce)
    if hmac.compare_digest(_digest(legacy), current):
        return legacy
    raise RuntimeError("refresh family state is inconsistent: replay mismatch")


def _successor(secret: bytes, family_id: str, nonce: str) -> bytes:
    """Derive the secret that follows `secret`; only a holder of `secret` can compute it."""
    message = b"|".join((_KDF_LABEL, family_id.encode(), nonce.encode()))
    return hmac.new(secret, message, hashlib.sha256).digest()


def _successor_v1(secret: bytes, family_id: str, generation: int, nonce: str) -> bytes:
    """Derive a successor the way releases before the one-round-trip rotation did."""
    message = b"|".join((_KDF_LABEL_V1, family_id.encode(), str(generation).encode(), nonce.encode()))
    return hmac.new(secret, message, hashlib.sha256).digest()


def _parse(token: str) -> tuple[str, bytes] | None:
    """Split a token into (family_id, raw secret); None unless both parts are canonical."""
    family_id, dot, encoded = token.partition(".")
    if not dot or not _FAMILY_ID.fullmatch(family_id) or not _SECRET.fullmatch(encoded):
        return None
    try:
        secret = base64.urlsafe_b64decode(encoded + "=")
    except (binascii.Error, ValueError):
        return None
    # One secret, one spelling: non-zero padding bits would otherwise decode to the same bytes.
    if _b64(secret) != encoded or _b64(base64.urlsafe_b64decode(family_id + "==")) != family_id:
        return None
    return family_id, secret


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _digest(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _ms(seconds: float) -> int:
    return max(math.ceil(seconds * 1000), 1)


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
