"""The Lua scripts of jwtauth.store.refresh: each one step that Redis runs atomically.

Key layout and token format: see jwtauth.store.refresh. Scripts that share a step share its
text: a step is a Lua function taking its key and the index of its first ARGV, so one body
serves every script that needs it, whatever comes before it in KEYS and ARGV.
"""

from __future__ import annotations

from jwtauth.store.limits import GUARD_LUA

# Create a family hash and give it its TTL in one step, so no key ever lives without a TTL.
# ARGV[a]: ttl_ms; ARGV[a + 1..]: field1, value1, field2, value2, ...
_CREATE_LUA = """
local function create_family(key, a)
  redis.call('HSET', key, unpack(ARGV, a + 1))
  redis.call('PEXPIRE', key, ARGV[a])
end
"""

# Add a family to its subject's index and drop members past their absolute expiry, so the
# index stays as small as the set of families that can still be alive. TTL = latest expiry,
# at most `cap` ms if given (a session's grants: jwtauth.store.sessions, which shares this step).
# ARGV[a], ARGV[a + 1], ARGV[a + 2]: now, absolute expiry, family id.
INDEX_LUA = """
local function index_family(key, a, cap)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[a])
  redis.call('ZADD', key, ARGV[a + 1], ARGV[a + 2])
  local top = redis.call('ZRANGE', key, '-1', '-1', 'WITHSCORES')
  local ms = math.ceil((tonumber(top[2]) - tonumber(ARGV[a])) * 1000)
  if cap and cap < ms then ms = cap end
  redis.call('PEXPIRE', key, string.format('%d', math.max(ms, 1)))
end
"""

# Create the family an authorization code starts, inside the code's take (jwtauth.store.codes),
# so the exchange is one round trip. What the grant is comes from the code's hash, written at
# issue with the subject-index entry and the session link (RefreshStore.ahead_of_code); what
# the request adds comes from ARGV. The family's life is capped by the index entry's score, so
# "log out everywhere" finds it for as long as it lives, even if the client's lifetime grew.
# ARGV[a..a+5]: now, absolute expiry, idle expiry, first secret's digest, DPoP jkt ('' if
# none), family id. g: client, subject (sealed), scope, audience, auth_time, sid ('' if none),
# bound (the index entry's score).
START_FROM_CODE_LUA = """
local function start_family(key, a, g)
  local abs_s, idle_s = ARGV[a + 1], ARGV[a + 2]
  if tonumber(g.bound) < tonumber(abs_s) then abs_s = g.bound end
  if tonumber(idle_s) > tonumber(abs_s) then idle_s = abs_s end
  local words = {}
  for s in string.gmatch(g.scope, '%S+') do words[#words + 1] = s end
  redis.call('HSET', key, 'client', g.client, 'subject', g.subject, 'scope', table.concat(words, ' '),
             'audience', cjson.encode({g.audience}), 'auth_time', g.auth_time, 'created', ARGV[a],
             'abs_exp', abs_s, 'idle_exp', idle_s, 'gen', '1', 'cur', ARGV[a + 3])
  if ARGV[a + 4] ~= '' then redis.call('HSET', key, 'jkt', ARGV[a + 4]) end
  if g.sid ~= '' then redis.call('HSET', key, 'sid', g.sid) end
  local ms = math.max(math.ceil((tonumber(idle_s) - tonumber(ARGV[a])) * 1000), 1)
  redis.call('PEXPIRE', key, string.format('%d', ms))
end
"""
START_ARGS = 6  # how many ARGV start_family reads, at the end of its script's ARGV

# KEYS: family. ARGV: ttl_ms, field1, value1, field2, value2, ...
CREATE = _CREATE_LUA + "create_family(KEYS[1], 1)\n"

# KEYS: subject index. ARGV: now, absolute expiry, family id.
INDEX = INDEX_LUA + "index_family(KEYS[1], 1)\n"

# Index and create in one script, where one script may touch both keys (not on Cluster: two
# slots): one EVALSHA fewer for Redis to run per family started from a code or a device.
# KEYS: subject index, family. ARGV: 1-3 INDEX's, 4.. CREATE's.
INDEXED_CREATE = INDEX_LUA + _CREATE_LUA + "index_family(KEYS[1], 1)\ncreate_family(KEYS[2], 4)\n"

# Start a family only while no failure counter is locked: the password grant's usual sign-in
# (a password this process already proved) in one round trip, atomically, so a locked-out
# user's right password creates nothing and is refused like a wrong one (RFC 6749 §4.3.2).
# A sign-in that passes also marks its device known (issue 18), in the same round trip.
# KEYS: subject index, family, device mark, then the guard's counters.
# ARGV: 1-4 the guard's (now, max failures, window, mark ttl), 5-7 INDEX's, 8.. CREATE's.
GUARDED_CREATE = (
    GUARD_LUA
    + INDEX_LUA
    + _CREATE_LUA
    + """
local g = failure_guard(4, 1)
if g[1] > 0 then return g end
remember_device(3, 1)
index_family(KEYS[1], 5)
create_family(KEYS[2], 8)
return g
"""
)

# Decide one rotation atomically and return what the caller needs, so a rotation is one round
# trip. Digests are compared with == because they are SHA-256 of 256-bit secrets: timing
# reveals nothing usable about a preimage.
# KEYS: family, used list, tombstone.
# ARGV: 1 presented digest, 2 client_id, 3 now, 4 grace seconds, 5 idle ttl,
#       6 candidate successor digest, 7 nonce, 8 used_history - 1, 9 tombstone ttl ms,
#       10 tombstone value, 11 the thumbprint of the request's DPoP key ('' without a proof)
# Reply for ok and replay: status, gen, idle_exp, subject, scope, audience, auth_time, created,
# abs_exp, sid (nil when the family has none), then for replay only the stored nonce and
# current digest. For reuse: status, subject.
ROTATE = """
local f = redis.call('HMGET', KEYS[1], 'client', 'cur', 'prev', 'gen', 'abs_exp', 'idle_exp',
                     'rotated_at', 'nonce', 'subject', 'scope', 'audience', 'auth_time',
                     'created', 'jkt', 'sid')
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
  return {'ok', gen, idle_s, f[9], f[10], f[11], f[12], f[13], f[5], f[15]}
end
-- The same call sent again (redis-py's retry after a reply lost with its connection) carries
-- this rotation's own nonce: a replay whatever the grace period, never reuse.
if kind == 'prev' and (f[8] == ARGV[7] or now - tonumber(f[7]) < tonumber(ARGV[4])) then
  return {'replay', f[4], f[6], f[9], f[10], f[11], f[12], f[13], f[5], f[15], f[8], f[2]}
end
-- RFC 9700 §4.14.2: a rotated-out secret seen again means a token leaked; attacker and
-- victim cannot be told apart, so the whole family dies, the newest token included.
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[10], 'PX', ARGV[9])
return {'reuse', f[9]}
"""

# Revoke one family if it exists and the optional secret and owner checks pass; reply with
# its subject (for the revocation document's index) or 0. With ARGV[7] = '1' (bar), a family
# that does not exist gets its tombstone all the same and the reply is {2, ''}: the code whose
# grant it names (jwtauth.grants.code_family) is then dead.
# KEYS: family, used list, tombstone.
# ARGV: 1 check secret ('1'/'0'), 2 digest, 3 check client ('1'/'0'), 4 client_id,
#       5 tombstone ttl ms, 6 tombstone value, 7 bar ('1'/'0')
REVOKE = """
local f = redis.call('HMGET', KEYS[1], 'client', 'cur', 'prev', 'subject')
if not f[1] then
  if ARGV[7] ~= '1' then return 0 end
  redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[5])
  return {2, ''}
end
if ARGV[1] == '1' and ARGV[2] ~= f[2] and ARGV[2] ~= f[3]
   and not redis.call('LPOS', KEYS[2], ARGV[2]) then
  return 0
end
if ARGV[3] == '1' and ARGV[4] ~= f[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[5])
return {1, f[4] or ''}
"""

# Whether a family's tombstone lives. A script rather than EXISTS only for its path: the store
# runs scripts on its lean path (redisclient.StoreRedis.run_script), which skips redis-py's
# per-command layers; introspection of every refresh-family access token asks this.
# KEYS: tombstone.
REVOKED = "return redis.call('EXISTS', KEYS[1])"
