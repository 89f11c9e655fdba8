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
--   BENCH_THREADS                         wrk's -t, to split the file between threads
--
-- A fixed request has no response() callback: wrk then skips parsing bodies (it shares the
-- CPU with the server). done() prints the results in a fixed form for bench/run.py.

local mode = os.getenv("BENCH_MODE") or "fixed"
local threads = tonumber(os.getenv("BENCH_THREADS") or "2")
local count = 0

function setup(thread)
  thread:set("index", count)
  count = count + 1
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
end

function done(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("BENCH p50_us=%d p99_us=%d\n",
    latency:percentile(50), latency:percentile(99)))
end
