-- wrk script of the loopback load benchmark (bench/run.sh).
--
-- Every request carries an X-User-Id from a fixed pool of BENCH_USERS users
-- (default 1000), so a gateway that buckets users (flag targeting, sticky
-- canary) does the work it does in production instead of answering one
-- cached user; proxies that ignore the header forward it unchanged. The
-- requests are formatted once per thread in init(), so the per-request cost
-- in wrk is a table lookup, the same for every target.
--
-- done() prints one machine-readable line that run.sh parses; wrk's own
-- --latency table (same histogram) stays in the raw log.

local users = tonumber(os.getenv("BENCH_USERS") or "") or 1000
local pool = {}
local next_user = 0

function init(args)
  for i = 1, users do
    pool[i] = wrk.format(nil, nil, { ["X-User-Id"] = "bench-user-" .. i })
  end
end

function request()
  next_user = next_user % users + 1
  return pool[next_user]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f " ..
    "connect_errors=%d read_errors=%d write_errors=%d status_errors=%d timeouts=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
