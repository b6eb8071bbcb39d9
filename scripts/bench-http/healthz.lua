-- GET /healthz: the HTTP stack's ceiling.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/healthz"
ops, failed = 0, 0
function response(status, headers, body)
  if status == 200 then ops = ops + 1 else failed = failed + 1 end
end
function done(summary, latency, requests) report(summary, latency) end
