-- POST /api/v1/prescriptions with the README's two-item body (one-step create, serve --dev);
-- requests rotate over the practices' bearer tokens in BENCH_PRESCRIBERS.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local body = os.getenv("BENCH_BODY")
local prescribers = split(os.getenv("BENCH_PRESCRIBERS"))
local turn = 0
ops, failed = 0, 0
function init(args)
  turn = id * 7
end
function request()
  turn = turn + 1
  return wrk.format("POST", "/api/v1/prescriptions", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. prescribers[turn % #prescribers + 1],
  }, body)
end
function response(status, headers, body)
  if status == 201 then ops = ops + 1 else failed = failed + 1 end
end
function done(summary, latency, requests) report(summary, latency) end
