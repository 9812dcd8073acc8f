-- wrk script for bench/backends/run.sh: POSTs a JSON body and prints one JSON result line.
--   wrk ... -s post_json.lua URL -- task
--   wrk ... -s post_json.lua URL -- recommend TENANT K
-- Each request gets its own body (a new task name, a rotating user id), so the backend does its
-- real work per request instead of answering one repeated input.

local kind, tenant, k
local counter = 0

function init(args)
  kind = args[1] or "task"
  tenant = args[2] or "demo"
  k = tonumber(args[3] or "20")
end

function request()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json"}
  local path, body
  if kind == "recommend" then
    headers["X-Tenant-Id"] = tenant
    path = "/v1/recommend"
    body = string.format('{"surface":"home","user_id":"u-%d","k":%d}', counter % 1000, k)
  else
    path = "/v1/tasks"
    body = string.format('{"name":"bench-%d","actions":[{"type":"transform"}]}', counter)
  end
  return wrk.format("POST", path, headers, body)
end

-- latency values are microseconds; errors.status counts non-2xx/3xx answers.
function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
