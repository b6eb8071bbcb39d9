-- Shared by the bench-http.sh wrk scripts: bearer tokens from the environment, per-thread
-- counters collected in done().
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function split(text)
  local out = {}
  for word in string.gmatch(text or "", "%S+") do table.insert(out, word) end
  return out
end

-- Prints one machine-readable line that bench-http.sh turns into a table row.
function report(summary, latency, ops_name)
  local ops, failed = 0, 0
  for _, thread in ipairs(threads) do
    ops = ops + (thread:get("ops") or 0)
    failed = failed + (thread:get("failed") or 0)
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT requests_per_s=%.1f ops_per_s=%.1f p50_ms=%.2f p99_ms=%.2f requests=%d ops=%d failed=%d socket_or_status_errors=%d\n",
    summary.requests / seconds, ops / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests, ops, failed, errors))
end
