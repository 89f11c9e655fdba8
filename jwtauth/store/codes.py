"""Keep authorization codes in Redis: issue, take exactly once, detect a second redemption.

Key layout (both keys of one code share the hash tag `{c:<sha256(code)>}`):

    {prefix}{c:<sha256(code)>}        hash: client, exp, ttl, data (the CodeRecord as JSON), chal,
                                      what the take script checks: redir, jkt, scope, aud, naud,
                                      and, written ahead, what starts the code's refresh family:
                                      fsub (the subject sealed to that family), fexp, fat, fsid
    {prefix}{c:<sha256(code)>}:used   hash: client, chal, family (bound by the take or later),
                                      replayed
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jwtauth.store import refresh_format
from jwtauth.store.pepper import Pepper, Unsealed
from jwtauth.store.redisclient import (
    RedisClient,
    ScriptCall,
    checked_prefix,
    in_order,
    is_standalone,
    ms,
    tagged_key,
    text,
)
from jwtauth.store.refresh_records import CodeAhead, FamilyStart
from jwtauth.store.refresh_scripts import START_ARGS, START_FROM_CODE_LUA

_CODE = re.compile(r"[A-Za-z0-9_-]{43}")
LABEL = "code record"
FAMILY_LABEL = "code family"

# KEYS[k]: code. ARGV[a..a+10]: ttl_ms, client, exp, ttl, data, PKCE challenge ('' if none),
# redirect_uri, DPoP jkt (each '' if none), scope, first audience ('' if none), audience count;
# then the fields of the family the code starts, if written ahead (fsub, fexp, fat, fsid): it
# reads to the end of ARGV, so no step may follow it in a script.
_ISSUE_LUA = """
local function issue_code(k, a)
  redis.call('HSET', KEYS[k], 'client', ARGV[a + 1], 'exp', ARGV[a + 2], 'ttl', ARGV[a + 3],
             'data', ARGV[a + 4], 'chal', ARGV[a + 5], 'redir', ARGV[a + 6], 'jkt', ARGV[a + 7],
             'scope', ARGV[a + 8], 'aud', ARGV[a + 9], 'naud', ARGV[a + 10], unpack(ARGV, a + 11))
  redis.call('PEXPIRE', KEYS[k], ARGV[a])
end
"""
_ISSUE = _ISSUE_LUA + "issue_code(1, 1)\n"

# Whether a code's record fits the token request (CodeCheck.args spells the request side);
# the same rules as jwtauth.grants.authorization_code checks in Python, which stays the judge
# of a refusal's wording. Lua's %S+ splits scopes as str.split() does: a scope is printable ASCII
# (RFC 6749 §3.3), checked at /authorize. c: the code's HMGET below.
# ARGV: 6 '1' to check, 7 redirect_uri sent ('1'/'0'), 8-10 the stored values that match it,
# 11 '1' if a code without redirect_uri matches it, 12 '1' if the client has one registered URI,
# 13 the request's DPoP jkt, 14 '1' if the client must use PKCE, 15 the client's scopes,
# 16 its default audience, 17 the resource sent, 18..last the audiences the client may address.
# Returns the code's audience when it fits, else false.
_FITS_LUA = """
local function fits(c, last)
  local chal, redir = c[5] or '', c[7]
  if ARGV[7] == '1' then
    if redir == '' then
      if ARGV[11] ~= '1' then return false end
    elseif redir ~= ARGV[8] and redir ~= ARGV[9] and redir ~= ARGV[10] then return false end
  elseif redir ~= '' and ARGV[12] ~= '1' and chal == '' then return false end
  if c[8] ~= '' and c[8] ~= ARGV[13] then return false end
  if chal == '' then
    if ARGV[4] ~= '' or ARGV[14] == '1' then return false end
  elseif ARGV[4] ~= chal then return false end
  local scopes = {}
  for s in string.gmatch(ARGV[15], '%S+') do scopes[s] = true end
  for s in string.gmatch(c[6], '%S+') do
    if not scopes[s] then return false end
  end
  if tonumber(c[10]) > 1 then return false end
  local aud = c[9]
  if aud == '' then aud = ARGV[16] end
  if ARGV[17] ~= '' and ARGV[17] ~= aud then return false end
  for i = 18, last do
    if ARGV[i] == aud then return aud end
  end
  return false
end
"""

# Take a code atomically: of any number of concurrent redemptions exactly one sees the record,
# and only if it fits the request (`fits`): a refused request burns nothing and gets the record
# back ('refused'), so the grant can say what did not fit. A code issued before the checked
# fields existed is handed back untaken ('unchecked'): the grant checks it, then takes it.
# A second redemption counts as a replay (and revokes) only from a presenter that proves it is
# the client: authenticated (ARGV[5] = '1'), or the S256 of its verifier equals the challenge
# (issue 18: a thief of a public client's code must not log the user out). Digests of 256-bit
# verifiers are compared with ==: timing reveals nothing usable about a preimage.
# A third key is the bar of the code's grant (the tombstone of the family id drawn from the code):
# a code whose grant was ended before its redemption (its session logged out, or "log out
# everywhere") is dead, whether or not its client may refresh.
# With a fourth key, the family the code starts (refresh_scripts.START_FROM_CODE_LUA) is created
# and bound to the used marker in this same step, when the code was issued with it written ahead:
# the reply's third value says whether it was ('1'), else the caller starts it (the two-trip path).
# KEYS: code, used marker[, its grant's bar[, family]]. ARGV: client_id, now, access-token lifetime
# in seconds, S256 of the presented verifier ('' if none), '1' if the client authenticated, then
# `fits`' own, then with a family start_family's own (START_ARGS of them).
_TAKE = _FITS_LUA + START_FROM_CODE_LUA + f"""
local last = #ARGV
if KEYS[4] then last = last - {START_ARGS} end
""" + """
local m = redis.call('HMGET', KEYS[2], 'client', 'family', 'chal')
if m[1] then
  if m[1] ~= ARGV[1] then return {'wrong_client'} end
  local proven = ARGV[5] == '1' or (m[3] ~= false and m[3] ~= '' and m[3] == ARGV[4])
  if not proven then return {'unproven_reuse'} end
  redis.call('HSET', KEYS[2], 'replayed', '1')
  return {'already_used', m[2] or ''}
end
local c = redis.call('HMGET', KEYS[1], 'client', 'exp', 'ttl', 'data', 'chal', 'scope', 'redir',
                     'jkt', 'aud', 'naud', 'fsub', 'fexp', 'fat', 'fsid')
if not c[1] then return {'unknown'} end
if tonumber(ARGV[2]) >= tonumber(c[2]) then
  redis.call('DEL', KEYS[1])
  return {'unknown'}
end
if c[1] ~= ARGV[1] then return {'wrong_client'} end
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  -- Its grant was ended before the redemption (the session logged out, or "log out
  -- everywhere"): what the code carries is over.
  redis.call('DEL', KEYS[1])
  return {'unknown'}
end
-- Written ahead, whole (a partial set starts nothing: the caller starts the family instead).
local ahead = KEYS[4] and c[11] and c[12] and c[13] and c[14] and tonumber(c[12])
local aud = false
if ARGV[6] == '1' then
  if not c[6] then return {'unchecked', c[4]} end
  aud = fits(c, last)
  if not aud then return {'refused', c[4]} end
end
local ms = math.max(math.ceil((tonumber(c[3]) + tonumber(ARGV[3])) * 1000), 1)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'client', ARGV[1], 'chal', c[5] or '')
redis.call('PEXPIRE', KEYS[2], string.format('%d', ms))
if ahead and aud then
  start_family(KEYS[4], last + 1, {client = ARGV[1], subject = c[11], scope = c[6], audience = aud,
                                   auth_time = c[13], sid = c[14], bound = c[12]})
  redis.call('HSET', KEYS[2], 'family', ARGV[#ARGV])
  -- What the family was made of, for the caller to hold against the sealed record.
  return {'ok', c[4], '1', c[6], aud, c[13], c[14]}
end
return {'ok', c[4], '0'}
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
    REFUSED = "refused"  # the record does not fit the request (CodeCheck): nothing changed
    UNCHECKED = "unchecked"  # issued before the checked fields were stored: nothing changed


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
class CodeCheck:
    """What a token request accepts of its code's record, spelled for the take script (`_FITS_LUA`).

    The grant builds it from the request and the client's configuration; the rules are the
    grant's (jwtauth.grants.authorization_code), so a refused take burns nothing.
    """

    redirect_uris: tuple[str, ...] | None  # None: not sent; else every stored value that matches
    unset_redirect_ok: bool  # the sent redirect_uri matches a code issued without one
    one_registered_uri: bool
    jkt: str | None  # the request's DPoP key thumbprint
    require_pkce: bool
    scopes: str  # the client's scopes, space-separated
    default_audience: str
    resource: str | None
    audiences: tuple[str, ...]  # every audience the client may address

    def args(self) -> list[str]:
        """Return ARGV[6..] of the take script."""
        sent = self.redirect_uris or ("",)
        candidates = [*sent, sent[0], sent[0]][:3]
        return [
            "1", "1" if self.redirect_uris is not None else "0", *candidates,
            "1" if self.unset_redirect_ok else "0", "1" if self.one_registered_uri else "0",
            self.jkt or "", "1" if self.require_pkce else "0", self.scopes, self.default_audience,
            self.resource or "", *self.audiences,
        ]  # fmt: skip


@dataclass(frozen=True)
class TakeResult:
    """Result of `CodeStore.take`: the record on OK, REFUSED and UNCHECKED, the family on ALREADY_USED.

    `started`: on OK, whether the take also created the family it was given (`start`), and
    `family_audience` the audience it gave it. On UNKNOWN, `family_id` names a family the take
    started for a record that then did not open or did not match it.
    """

    status: TakeStatus
    record: CodeRecord | None = None
    family_id: str | None = None
    started: bool = False
    family_audience: str | None = None


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
        # One script may touch the code's keys and the family's only where they need not share
        # a slot: standalone and Sentinel. A Cluster starts the family in a second trip.
        self.starts_families = is_standalone(client)
        self._issue = client.register_script(_ISSUE)
        self._take = client.register_script(_TAKE)
        self._bind = client.register_script(_BIND)

    def issue(
        self, record: CodeRecord, *, ttl: float, now: float, ahead: Callable[[str], CodeAhead] | None = None
    ) -> str:
        """Store `record` under a new code valid for `ttl` seconds and return the code.

        `ahead(family_id)`: what to write ahead of the code's grant, so a logout can bar it
        (`take`'s `bar`), and of the refresh family it may start, so its take can create it
        (`take`'s `start`); ignored where that cannot be (`starts_families`).
        """
        code = secrets.token_urlsafe(32)
        digest = _digest(code)
        args = self._new(record, digest, ttl, now)
        if ahead is None or not self.starts_families:
            self._issue(keys=[self._key(digest)], args=args)
            return code
        prepared = ahead(self._family_id(digest))
        for name, value in prepared.fields.items():
            args += [name, value]
        # In one round trip, the code last: a crash between leaves harmless entries, never a
        # code whose family "log out everywhere" could not find.
        in_order(self._redis, *prepared.calls, (self._issue, [self._key(digest)], args))
        return code

    def family_id(self, code: str) -> str:
        """Return the id of the grant `code` carries (drawn from it under the pepper).

        The family the code starts takes that id; a barring revocation of it kills the code.
        """
        return self._family_id(_digest(code))

    def _family_id(self, digest: str) -> str:
        # Keyed: only this server can tell which family a code's used marker will name.
        return refresh_format.b64(self._pepper.keyed(FAMILY_LABEL, digest)[:16])

    def claim(self, submission: str, *, ttl: float) -> bool:
        """Mark a consent `submission` used for `ttl` seconds; False if it already was (issue 18)."""
        return bool(self._redis.set(self._submission_key(submission), b"1", nx=True, px=ms(ttl)))

    def _new(self, record: CodeRecord, digest: str, ttl: float, now: float) -> list[str]:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        data = json.dumps(dataclasses.asdict(record), separators=(",", ":"))
        data = self._pepper.seal(LABEL, data, digest)
        checked = [
            record.code_challenge or "", record.redirect_uri or "", record.dpop_jkt or "", record.scope,
            record.audience[0] if record.audience else "", str(len(record.audience)),
        ]  # fmt: skip
        return [str(ms(ttl)), record.client_id, repr(now + ttl), repr(float(ttl)), data, *checked]

    def _submission_key(self, submission: str) -> str:
        return tagged_key(self._prefix, "s", hashlib.sha256(submission.encode()).hexdigest())

    def take(
        self,
        code: str,
        *,
        client_id: str,
        now: float,
        proof: str | None = None,
        authenticated: bool = True,
        check: CodeCheck | None = None,
        bar: str | None = None,
        start: FamilyStart | None = None,
    ) -> TakeResult:
        """Redeem `code` for `client_id`: OK once, ALREADY_USED afterwards, in one round trip.

        RFC 6749 §4.1.3: the code must have been issued to the authenticated client. A code
        presented by another client is refused but NOT burned, so a client that learns a
        victim's code cannot destroy it; it cannot redeem it either. With `check`, a record
        that does not fit the request (PKCE, redirect_uri, DPoP key, scope, audience) is not
        taken either: REFUSED with the record, so the caller can say why; UNCHECKED with the
        record for a code issued before the script could check it (the caller checks, then
        takes without `check`).

        A used code is ALREADY_USED (a replay: revoke) only if the presenter proves it is the
        client: `authenticated` (a confidential client), or `proof`, the S256 of the presented
        verifier, equals the code's challenge; otherwise UNPROVEN_REUSE, and nothing changes.

        `bar` (with `check`, on `starts_families` only): the bar of the code's grant
        (RefreshStore.bar_key of `family_id(code)`); once a logout set it, the code is UNKNOWN.
        `start` (with `bar`): the family of `family_id(code)`, created and bound to the code in
        this same step if the code was issued with it written ahead (`started`); else the caller
        starts it and binds it (`binding`).
        """
        if not _CODE.fullmatch(code):
            return TakeResult(TakeStatus.UNKNOWN)
        digest = _digest(code)  # the key's name and what its record is sealed to
        key = self._key(digest)
        args = [client_id, repr(now), repr(self._access_ttl), proof or "", "1" if authenticated else "0"]
        keys = [key, f"{key}:used"]
        args += check.args() if check else ["0"]
        if bar is not None and check is not None and self.starts_families:
            keys.append(bar)
            if start is not None:
                keys.append(start.key)
                args += start.args
        return self._taken(digest, self._take(keys=keys, args=args), start)

    def _taken(self, digest: str, reply: list[Any], start: FamilyStart | None) -> TakeResult:
        """Read the take script's reply (the record opened, the family it started checked)."""
        status = TakeStatus(text(reply[0]))
        if status in _WITH_RECORD:
            record = self._decode(digest, text(reply[1]))
            started = status is TakeStatus.OK and text(reply[2]) == "1"
            if started and record is not None and not _made_of(record, reply):
                record = None  # the hash's clear copies differ from its sealed record: not ours
            if record is None:
                # Unreadable (another pepper, or moved from another code): nothing to issue or
                # check. A family the take started is named, for the caller to revoke.
                orphan = start.issued.family_id if started and start is not None else None
                return TakeResult(TakeStatus.UNKNOWN, family_id=orphan)
            aud = text(reply[4]) if started else None
            return TakeResult(status, record=record, started=started, family_audience=aud)
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
        return (self._bind, [f"{self._key(_digest(code))}:used"], [family_id])

    def _key(self, digest: str) -> str:
        return tagged_key(self._prefix, "c", digest)

    def _decode(self, digest: str, data: str) -> CodeRecord | None:
        try:
            return _decode(self._pepper.open(LABEL, data, digest))
        except Unsealed:
            return None


def _made_of(record: CodeRecord, reply: list[Any]) -> bool:
    """Whether the family a take started was made of this record: scope, auth_time and sid."""
    scope, auth_time, sid = text(reply[3]), text(reply[5]), text(reply[6])
    return scope.split() == record.scope.split() and auth_time == repr(float(record.auth_time)) and (
        sid == (record.sid or "")
    )


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


_WITH_RECORD = frozenset((TakeStatus.OK, TakeStatus.REFUSED, TakeStatus.UNCHECKED))


def _decode(data: str) -> CodeRecord:
    fields: dict[str, Any] = json.loads(data)
    fields["audience"] = tuple(fields["audience"])
    fields["amr"] = tuple(fields.get("amr", ()))
    return CodeRecord(**fields)
