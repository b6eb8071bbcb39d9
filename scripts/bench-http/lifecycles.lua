-- Full lifecycles: create (prescriber) → release by token (pharmacist) → dispense both items
-- (pharmacist, Idempotency-Key). A thread keeps the follow-up steps its responses ask for in a
-- queue and sends them before starting new creates, so every connection stays busy and every
-- started lifecycle is finished. ops = dispenses answered 200 = complete lifecycles.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local body = os.getenv("BENCH_BODY")
local prescribers = split(os.getenv("BENCH_PRESCRIBERS"))
-- "ORG=token" pairs: a dispense goes out with the token of the pharmacy that released.
local pharmacists, pharmacist_of = {}, {}
for _, pair in ipairs(split(os.getenv("BENCH_PHARMACISTS"))) do
  local org, token = string.match(pair, "^([^=]+)=(.+)$")
  table.insert(pharmacists, token)
  pharmacist_of[org] = token
end
local dispense_body = '{"items": [{"line": 1, "outcome": "complete"}, {"line": 2, "outcome": "complete"}]}'
local pending = {}
local head, tail = 1, 0
local turn = 0
ops, failed = 0, 0
function init(args)
  turn = id * 7
end

local function push(step)
  tail = tail + 1
  pending[tail] = step
end

function request()
  if head <= tail then
    local step = pending[head]
    pending[head] = nil
    head = head + 1
    local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. step.pharmacist,
    }
    if step.kind == "release" then
      return wrk.format("POST", "/api/v1/release", headers, '{"token": "' .. step.token .. '"}')
    end
    headers["Idempotency-Key"] = "bench-dispense-" .. step.id
    return wrk.format("POST", "/api/v1/prescriptions/" .. step.id .. "/dispense", headers, dispense_body)
  end
  turn = turn + 1
  return wrk.format("POST", "/api/v1/prescriptions", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. prescribers[turn % #prescribers + 1],
  }, body)
end

-- Which step a response answers is read from its body: a create answers 201 with the token, a
-- release answers the prescription with the dispenser (status 0002, with dispenser), a complete
-- dispense the prescription dispensed (0006).
local function status_code(body)
  return string.match(body, '"status"%s*:%s*{%s*"code"%s*:%s*"(%d+)"')
end

function response(status, headers, body)
  if status == 201 then
    local id = string.match(body, '"id"%s*:%s*"([^"]+)"')
    local token = string.match(body, '"token"%s*:%s*"([^"]+)"')
    if id and token then
      push({kind = "release", id = id, token = token, pharmacist = pharmacists[turn % #pharmacists + 1]})
    else
      failed = failed + 1
    end
  elseif status == 200 and status_code(body) == "0002" then
    local id = string.match(body, '"id"%s*:%s*"([^"]+)"')
    local dispenser = string.match(body, '"dispenser"%s*:%s*"([^"]+)"')
    if id and pharmacist_of[dispenser] then
      push({kind = "dispense", id = id, pharmacist = pharmacist_of[dispenser]})
    else
      failed = failed + 1
    end
  elseif status == 200 and status_code(body) == "0006" then
    ops = ops + 1
  else
    failed = failed + 1
  end
end
function done(summary, latency, requests) report(summary, latency) end
