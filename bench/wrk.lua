-- wrk script for bench/run.py: one scenario per run, chosen by environment variables.
--
--   BENCH_METHOD, BENCH_BODY, BENCH_AUTH  a fixed request (GET or a form POST, HTTP Basic)
--   BENCH_MODE=refresh, BENCH_FILE        rotate refresh tokens: every token in the file starts
--                                         one family; each response's successor goes back to
--                                         the thread's pool, so no family is ever used twice at
--                                         once and every rotation presents the current token.
--                                         The file needs more tokens than connections: wrk calls
--                                         request() once before the run to check the script,
--                                         and the token that call takes is never sent.
--   BENCH_MODE=code, BENCH_FILE           redeem authorization codes, each once
--   BENCH_MODE=dpop, BENCH_FILE           the fixed request (client_credentials) with a DPoP
--                                         header, each proof in the file sent once (when the
--                                         file runs dry, wrk sends a broken request: an error)
--   BENCH_MODE=device, BENCH_FILE         poll device codes (RFC 8628), each once, none approved:
--                                         every answer should be 400 authorization_pending, so
--                                         done() counts the answers that are anything else
--   BENCH_MODE=assertion, BENCH_FILE      client_credentials with private_key_jwt: each line is a
--                                         signed client assertion, sent once (its jti is spent)
--   BENCH_BEARER                          a fixed request with Authorization: Bearer <this>
--   BENCH_THREADS                         wrk's -t, to split the file between threads
--
-- A fixed request has no response() callback: wrk then skips parsing bodies (it shares the
-- CPU with the server). done() prints the results in a fixed form for bench/run.py.

local mode = os.getenv("BENCH_MODE") or "fixed"
local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
local count = 0
local all_threads = {}

function setup(thread)
  thread:set("index", count)
  thread:set("unexpected", 0)
  count = count + 1
  all_threads[count] = thread
end

wrk.method = os.getenv("BENCH_METHOD") or "GET"
if wrk.method == "POST" then
  wrk.body = os.getenv("BENCH_BODY") or ""
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = "Basic " .. auth
end
local bearer = os.getenv("BENCH_BEARER")
if bearer and bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
end

local pool, head, tail = {}, 1, 0

local function load_share()
  local n = 0
  for line in io.lines(os.getenv("BENCH_FILE")) do
    if n % threads == index and line ~= "" then
      tail = tail + 1
      pool[tail] = line
    end
    n = n + 1
  end
end

local function take()
  if head > tail then
    return "exhausted" -- counted as an error by the server's answer
  end
  local value = pool[head]
  pool[head] = nil
  head = head + 1
  return value
end

if mode ~= "fixed" then
  function init(args)
    load_share()
  end
end

if mode == "refresh" then
  function request()
    return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. take())
  end

  function response(status, headers, body)
    local successor = body:match('"refresh_token":%s*"([^"]+)"')
    if successor then
      tail = tail + 1
      pool[tail] = successor
    end
  end
elseif mode == "code" then
  function request()
    return wrk.format(nil, nil, nil, "grant_type=authorization_code&code=" .. take())
  end
elseif mode == "dpop" then
  -- Each request is formatted in init(), before wrk starts its clock: the proof makes it ~10x
  -- longer than a plain one, and wrk shares the cores with the server it measures.
  local format_share = load_share
  load_share = function()
    format_share()
    for i = head, tail do
      wrk.headers["DPoP"] = pool[i]
      pool[i] = wrk.format()
    end
  end

  function request()
    return take()
  end
elseif mode == "assertion" then
  local grant = "grant_type=client_credentials&client_assertion_type="
    .. "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="
  function request()
    return wrk.format(nil, nil, nil, grant .. take())
  end
elseif mode == "device" then
  local grant = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code="
  unexpected = 0
  function request()
    return wrk.format(nil, nil, nil, grant .. take())
  end

  function response(status, headers, body)
    if status ~= 400 or not body:find("authorization_pending", 1, true) then
      unexpected = unexpected + 1
    end
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("BENCH p50_us=%d p99_us=%d\n",
    latency:percentile(50), latency:percentile(99)))
  if mode == "device" then
    local unexpected = 0
    for _, thread in ipairs(all_threads) do
      unexpected = unexpected + (thread:get("unexpected") or 0)
    end
    io.write(string.format("BENCH unexpected=%d\n", unexpected))
  end
end
