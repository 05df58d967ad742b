-- wrk script for the SCIM benchmark (bench/run.sh drives it; see bench/README.md).
--
--   wrk -t2 -c32 -d15s --latency -s bench/scim.lua http://127.0.0.1:PORT -- \
--       SCENARIO TOKEN PREFIX DATAFILE GROUP_ID TAG USERS OFFSET
--
-- SCENARIO  post | get | filter | list | patch
-- TOKEN     bearer token ("-" for none)
-- PREFIX    SCIM base path: /scim/v2 (scimbridge) or /v2 (scim2-server)
-- DATAFILE  one user id a line: every loaded user (get), or the users outside the big group (patch)
-- GROUP_ID  the 50,000-member group (patch)
-- TAG       makes POSTed userNames unique across runs
-- USERS     how many users were loaded (userNames user000000@… upwards; filter, list)
-- OFFSET    where in its share of DATAFILE a patch run starts (warm-up and measured runs differ)
--
-- The patch scenario alternates: add one user to the big group, remove one it added 64 requests
-- earlier (so every request changes the membership; 64 is more than the connections a thread has,
-- so the add has completed before its remove is sent). Each thread works on its own users.
--
-- done() prints one line "WRKJSON {...}" with the counts and latency percentiles (microseconds).

local scenario, prefix, group_id, tag
local users = 0
local ids = {}
local counter = 0
local offset = 0
local LAG = 64

local function read_lines(path, keep)
  local out = {}
  local i = 0
  for line in io.lines(path) do
    if line ~= "" then
      if keep(i) then out[#out + 1] = line end
      i = i + 1
    end
  end
  return out
end

function setup(thread)
  thread:set("tid", thread_count or 0)
  thread_count = (thread_count or 0) + 1
  threads = threads or {}
  threads[#threads + 1] = thread
  -- every thread learns how many threads there are (set again as each one is created)
  for _, t in ipairs(threads) do t:set("nthreads", thread_count) end
end

function init(args)
  scenario = args[1]
  local token = args[2]
  prefix = args[3]
  local datafile = args[4]
  group_id = args[5]
  tag = args[6]
  users = tonumber(args[7]) or 0
  offset = tonumber(args[8]) or 0
  math.randomseed(os.time() * 1000 + tid * 7919 + (offset % 1000))
  wrk.headers["Content-Type"] = "application/scim+json"
  wrk.headers["Accept"] = "application/scim+json"
  if token ~= "-" then wrk.headers["Authorization"] = "Bearer " .. token end
  if scenario == "get" then
    ids = read_lines(datafile, function() return true end)
  elseif scenario == "patch" then
    -- this thread's share of the users outside the big group
    ids = read_lines(datafile, function(i) return i % nthreads == tid end)
  end
end

local function user_body(user_name, n)
  return string.format(
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User",' ..
    '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],' ..
    '"userName":"%s","externalId":"ext-%s",' ..
    '"name":{"givenName":"Given","familyName":"Family%d","formatted":"Given Family%d"},' ..
    '"displayName":"Given Family%d","title":"Engineer","active":true,' ..
    '"emails":[{"value":"%s","type":"work","primary":true}],' ..
    '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":' ..
    '{"employeeNumber":"%d","department":"Engineering","costCenter":"CC-42"}}',
    user_name, user_name, n, n, n, user_name, n)
end

local function member_patch(op_json)
  return '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[' .. op_json .. ']}'
end

function request()
  counter = counter + 1
  if scenario == "post" then
    local name = string.format("post-%s-%d-%d@bench.example.com", tag, tid, counter)
    return wrk.format("POST", prefix .. "/Users", nil, user_body(name, counter))
  elseif scenario == "get" then
    return wrk.format("GET", prefix .. "/Users/" .. ids[math.random(#ids)])
  elseif scenario == "filter" then
    local n = math.random(0, users - 1)
    return wrk.format("GET", string.format(
      "%s/Users?filter=userName%%20eq%%20%%22user%06d%%40bench.example.com%%22", prefix, n))
  elseif scenario == "floor" then
    return wrk.format("GET", prefix .. "/ServiceProviderConfig")
  elseif scenario == "list" then
    local start = math.random(1, users - 99)
    return wrk.format("GET", string.format("%s/Users?startIndex=%d&count=100", prefix, start))
  elseif scenario == "patch" then
    local s = counter - 1
    local body
    local function pick(k) return ids[(offset + k) % #ids + 1] end
    if s < LAG then
      body = member_patch('{"op":"add","path":"members","value":[{"value":"' .. pick(s) .. '"}]}')
    elseif (s - LAG) % 2 == 0 then
      local k = math.floor((s - LAG) / 2)
      body = member_patch('{"op":"remove","path":"members[value eq \\"' .. pick(k) .. '\\"]"}')
    else
      local k = LAG + math.floor((s - LAG - 1) / 2)
      body = member_patch('{"op":"add","path":"members","value":[{"value":"' .. pick(k) .. '"}]}')
    end
    return wrk.format("PATCH", prefix .. "/Groups/" .. group_id, nil, body)
  end
  error("unknown scenario " .. tostring(scenario))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
