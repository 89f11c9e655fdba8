-- wrk script: POST a client_credentials token request with HTTP Basic client auth
-- (testclient:testpassword). No response() callback on purpose: it would run Lua for every
-- response inside wrk, which shares the CPU with the server. wrk itself counts non-2xx/3xx
-- answers; done() prints them in a fixed form for bench/serving.py to parse.
wrk.method = "POST"
-- CEILING_PATH: the bound app's routes with Redis round trips (bench/bounds.py).
wrk.path = os.getenv("CEILING_PATH") or "/api/v1/tokens/"
wrk.body = "grant_type=client_credentials&scope=read+write"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic dGVzdGNsaWVudDp0ZXN0cGFzc3dvcmQ="

done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("BENCH p50_us=%d p99_us=%d\n",
    latency:percentile(50), latency:percentile(99)))
end
