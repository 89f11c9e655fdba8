"""Keep device authorization requests (RFC 8628) in Redis: issue, approve once, poll, redeem once.

Key layout (each operation touches one hash tag):

    {prefix}{d:<sha256(device_code)>}   hash: client, scope, audience, exp, status, interval,
                                        last (poll), subject, auth_time, family, replayed
    {prefix}{u:<sha256(user_code)>}     string: the sha256 of the device code it stands for

Only digests are stored: a device code is 256 random bits, so a dump of Redis polls nothing.
The approving user's `subject` is sealed under a pepper-derived key, bound to the request's
digest (jwtauth.store.pepper); a clear subject from before that is still read until it expires.
A user code maps to its request only while the request waits for the user; approving or
denying deletes the mapping, so a code is entered successfully at most once.

Status goes pending -> approved -> done, or pending -> denied; every step is one Lua script
on the request's own key, so a second approval, a deny after approval, or twenty concurrent
polls after approval change nothing beyond the first (RFC 8628 §3.4, §5.2). A redeemed request
lives on for the access-token lifetime, so a poll after success still finds the refresh family
it must revoke (as a second redemption of an authorization code does, RFC 6749 §4.1.2).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from jwtauth.store.pepper import Pepper, Unsealed
from jwtauth.store.redisclient import RedisClient, ScriptCall, checked_prefix, ms, tagged_key, text

_DEVICE_CODE = re.compile(r"[A-Za-z0-9_-]{43}")
_REF = re.compile(r"[0-9a-f]{64}")
LABEL = "device subject"
USER_CODE_ATTEMPTS = 5  # fresh user codes to draw if one is taken (20^8 codes: never, in practice)

# KEYS: request. ARGV: ttl_ms, then field/value pairs.
_ISSUE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
"""

# Approve or deny a waiting request, once. KEYS: request. ARGV: now, new status, subject, auth_time.
# Returns 'ok', or why nothing changed: unknown, expired, or the status already decided.
_DECIDE = """
local r = redis.call('HMGET', KEYS[1], 'status', 'exp')
if not r[1] then return 'unknown' end
if tonumber(ARGV[1]) >= tonumber(r[2]) then return 'expired' end
if r[1] ~= 'pending' then return r[1] end
if ARGV[2] == 'approved' then
  redis.call('HSET', KEYS[1], 'status', 'approved', 'subject', ARGV[3], 'auth_time', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'status', 'denied')
end
return 'ok'
"""

# One poll of the token endpoint (RFC 8628 §3.4, §3.5), in one round trip.
# KEYS: request. ARGV: client_id, now, slow_down step, ms the redeemed record is kept.
_POLL = """
local r = redis.call('HMGET', KEYS[1], 'client', 'exp', 'status', 'last', 'interval',
  'scope', 'audience', 'subject', 'auth_time', 'family')
if not r[1] then return {'unknown'} end
if r[1] ~= ARGV[1] then return {'wrong_client'} end
if r[3] == 'done' then
  redis.call('HSET', KEYS[1], 'replayed', '1')
  return {'replayed', r[10] or ''}
end
local now = tonumber(ARGV[2])
if now >= tonumber(r[2]) then return {'expired'} end
if r[3] == 'denied' then return {'denied'} end
if r[3] == 'approved' then
  redis.call('HSET', KEYS[1], 'status', 'done')
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'ok', r[6], r[7], r[8], r[9]}
end
redis.call('HSET', KEYS[1], 'last', ARGV[2])
local interval = tonumber(r[5])
if r[4] and now < tonumber(r[4]) + interval then
  interval = interval + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'interval', tostring(interval))
  return {'slow_down', tostring(interval)}
end
return {'pending'}
"""

# Bind the family a redemption started to the request; 0 if a replay came first (revoke it).
# KEYS: request. ARGV: family id.
_BIND = """
local m = redis.call('HMGET', KEYS[1], 'status', 'replayed')
if m[1] ~= 'done' then return 0 end
redis.call('HSET', KEYS[1], 'family', ARGV[1])
if m[2] then return 0 end
return 1
"""


@dataclass(frozen=True)
class IssuedDevice:
    """A new device request: what the device shows and polls with."""

    device_code: str
    user_code: str
    expires_at: float


@dataclass(frozen=True)
class DeviceRequest:
    """A request waiting for its user, as the verification page shows it."""

    ref: str  # the digest of its device code: names it to approve/deny, never polls
    client_id: str
    scope: tuple[str, ...]
    audience: str
    expires_at: float


@dataclass(frozen=True)
class Poll:
    """One poll's outcome; `status` is ok, pending, slow_down, denied, expired, replayed,
    wrong_client or unknown."""

    status: str
    interval: int | None = None
    scope: tuple[str, ...] = ()
    audience: str = ""
    subject: str = ""
    auth_time: float = 0.0
    family_id: str | None = None


class DeviceStore:
    """Store device authorization requests in Redis (standalone, Sentinel or Cluster)."""

    def __init__(
        self, client: RedisClient, *, pepper: Pepper, prefix: str = "jwtauth:", redeemed_ttl: float = 3600.0
    ) -> None:
        self._redis = client
        self._pepper = pepper
        self._prefix = checked_prefix(prefix)
        self._redeemed_ms = ms(redeemed_ttl)
        self._issue = client.register_script(_ISSUE)
        self._decide = client.register_script(_DECIDE)
        self._poll = client.register_script(_POLL)
        self._bind = client.register_script(_BIND)

    def issue(
        self,
        *,
        client_id: str,
        scope: tuple[str, ...],
        audience: str,
        now: float,
        ttl: float,
        interval: int,
        new_user_code: Callable[[], str],
    ) -> IssuedDevice:
        """Store a new request and return its device code and (canonical) user code."""
        if ttl <= 0 or interval < 1:
            raise ValueError("ttl and interval must be positive")
        device_code = secrets.token_urlsafe(32)
        ref = _digest(device_code)
        fields = {
            "client": client_id,
            "scope": " ".join(scope),
            "audience": audience,
            "exp": repr(now + ttl),
            "status": "pending",
            "interval": str(interval),
        }
        args = [str(ms(2 * ttl))]  # kept past expiry, so a late poll hears expired_token
        for name, value in fields.items():
            args += [name, value]
        self._issue(keys=[self._request_key(ref)], args=args)
        for _ in range(USER_CODE_ATTEMPTS):
            user_code = new_user_code()
            # SET NX: two live requests never share a user code.
            if self._redis.set(self._user_key(user_code), ref, nx=True, px=ms(ttl)):
                return IssuedDevice(device_code, user_code, now + ttl)
        raise RuntimeError("could not draw a free user code")  # a bug: 20^8 codes

    def find(self, user_code: str, *, now: float) -> DeviceRequest | None:
        """Return the live, undecided request a canonical user code stands for, or None."""
        ref = self._redis.get(self._user_key(user_code))
        if ref is None or not _REF.fullmatch(ref_text := text(ref)):
            return None
        values = self._redis.hmget(
            self._request_key(ref_text), ["client", "scope", "audience", "exp", "status"]
        )
        client, scope, audience, exp, status = (None if v is None else text(v) for v in values)
        if client is None or exp is None or status != "pending" or now >= float(exp):
            return None
        return DeviceRequest(ref_text, client, tuple((scope or "").split()), audience or "", float(exp))

    def approve(self, ref: str, *, subject: str, auth_time: float, now: float) -> str:
        """Bind the user to a waiting request, once; 'ok' or why nothing changed."""
        if not _REF.fullmatch(ref):
            return "unknown"
        return self._decided(ref, now, "approved", self._pepper.seal(LABEL, subject, ref), repr(auth_time))

    def deny(self, ref: str, *, now: float) -> str:
        """End a waiting request; 'ok' or why nothing changed (a deny after approval is void)."""
        return self._decided(ref, now, "denied", "", "")

    def forget(self, user_code: str) -> None:
        """Delete a user code's mapping once its request is decided: it is entered once."""
        self._redis.delete(self._user_key(user_code))

    def poll(self, device_code: str, *, client_id: str, now: float, step: int) -> Poll:
        """Poll a request for `client_id`: ok (redeemed now, once), or why not."""
        if not _DEVICE_CODE.fullmatch(device_code):
            return Poll("unknown")
        ref = _digest(device_code)
        keys = [self._request_key(ref)]
        reply = self._poll(keys=keys, args=[client_id, repr(now), str(step), str(self._redeemed_ms)])
        status = text(reply[0])
        if status == "ok":
            scope, audience, stored, auth_time = (text(v) for v in reply[1:5])
            try:
                subject = self._pepper.open(LABEL, stored, ref)
            except Unsealed:  # redeemed, but by no one this server can name: issue nothing
                return Poll("unknown")
            return Poll(status, scope=tuple(scope.split()), audience=audience, subject=subject,
                        auth_time=float(auth_time))  # fmt: skip
        if status == "slow_down":
            return Poll(status, interval=int(text(reply[1])))
        if status == "replayed":
            return Poll(status, family_id=text(reply[1]) or None)
        return Poll(status)

    def binding(self, device_code: str, family_id: str) -> ScriptCall:
        """The script call binding a redeemed request to its new family, for RefreshStore.create.

        Its reply: 1 bound; 0 a replay came between redemption and bind, so revoke the family.
        """
        return (self._bind, [self._request_key(_digest(device_code))], [family_id])

    def _decided(self, ref: str, now: float, status: str, subject: str, auth_time: str) -> str:
        if not _REF.fullmatch(ref):
            return "unknown"
        return text(self._decide(keys=[self._request_key(ref)], args=[repr(now), status, subject, auth_time]))

    def _request_key(self, ref: str) -> str:
        return tagged_key(self._prefix, "d", ref)

    def _user_key(self, user_code: str) -> str:
        return tagged_key(self._prefix, "u", _digest(user_code))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
