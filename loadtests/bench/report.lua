-- wrk script for loadtests.bench: sends the request described by BENCH_* environment
-- variables (kept out of the command line, where a token would show in `ps`), counts
-- non-2xx answers, and prints one JSON line for the bench to parse.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

-- Each wrk thread runs its own Lua state: count per thread, sum in done().
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

non_2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local non = 0
  for _, thread in ipairs(threads) do
    non = non + thread:get("non_2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"timeouts": %d, "p50_us": %.1f, "p99_us": %.1f}\n',
    summary.requests, summary.duration, non, e.connect + e.read + e.write,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
