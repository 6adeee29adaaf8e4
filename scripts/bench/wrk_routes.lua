-- wrk script for the HealthTrack benchmark (scripts/bench.py runs it; docs/performance.md).
--
--   wrk -t2 -c32 -d15s --timeout 10s -s scripts/bench/wrk_routes.lua http://127.0.0.1:PORT \
--       -- ROUTE PEOPLE_FILE [BASE_EPOCH]
--
-- ROUTE: ceiling | recommendations | summary | list | create | bulk
-- PEOPLE_FILE: one "user_id<TAB>access_token" line per person. Every request carries
--   "Authorization: Bearer <token>" of the next person in the file (each wrk thread starts
--   at a different person), so the load is spread over many users, as in production.
--   "ceiling" sends the same header to the bare Django view, which ignores it: the client
--   does the same work for the ceiling as for the routes.
-- BASE_EPOCH: newest recorded_at of the samples the POST routes send (default: now). Each
--   POST body is different (recorded_at steps back one second per request, the thread id in
--   the milliseconds; values vary), so every POST is a real insert.
--
-- At the end one line "BENCH_JSON {...}" carries the figures (latencies in microseconds).

local next_thread_id = 0

function setup(thread)
   next_thread_id = next_thread_id + 1
   thread:set("thread_id", next_thread_id)
end

local route, people, prebuilt, position, counter, base_epoch

local function read_people(path)
   local list = {}
   local file = assert(io.open(path, "r"), "cannot open people file " .. tostring(path))
   for line in file:lines() do
      local user_id, token = line:match("^(%d+)\t(%S+)$")
      if user_id then
         list[#list + 1] = { user_id = user_id, token = token }
      end
   end
   file:close()
   assert(#list > 0, "no people in " .. path)
   return list
end

local function headers_for(person, with_body)
   local headers = { ["Authorization"] = "Bearer " .. person.token, ["Accept"] = "application/json" }
   if with_body then
      headers["Content-Type"] = "application/json"
   end
   return headers
end

local GET_PATHS = {
   ceiling = function(person) return "/" end,
   recommendations = function(person) return "/api/v1/recommendations/" .. person.user_id end,
   summary = function(person) return "/api/v1/health-metrics/summary" end,
   list = function(person) return "/api/v1/health-metrics/user/" .. person.user_id .. "?limit=50" end,
}

local function next_person()
   position = position % #people + 1
   return people[position]
end

-- A recorded_at no other request of this run uses: one second further back per sample,
-- the thread in the milliseconds.
local function recorded_at(steps_back)
   return os.date("!%Y-%m-%dT%H:%M:%S", base_epoch - steps_back) .. string.format(".%03dZ", thread_id % 1000)
end

local function create_body()
   counter = counter + 1
   local value = 50 + (counter * 7 + thread_id * 13) % 90
   return string.format('{"metric_type":"heart_rate","value":%d,"unit":"bpm","recorded_at":"%s"}',
      value, recorded_at(counter))
end

local BULK_SAMPLES = 1000

local function bulk_body()
   counter = counter + 1
   local parts = {}
   local first = (counter - 1) * BULK_SAMPLES
   for index = 1, BULK_SAMPLES do
      local step = first + index
      if index % 2 == 0 then
         parts[index] = string.format('{"metric_type":"steps","value":%d,"recorded_at":"%s"}',
            (step * 37) % 2000, recorded_at(step))
      else
         parts[index] = string.format('{"metric_type":"heart_rate","value":%d,"recorded_at":"%s"}',
            55 + (step * 11) % 80, recorded_at(step))
      end
   end
   return '{"samples":[' .. table.concat(parts, ",") .. "]}"
end

function init(args)
   route = args[1]
   people = read_people(args[2])
   base_epoch = tonumber(args[3]) or os.time()
   thread_id = thread_id or 1
   counter = 0
   -- Threads start at different people.
   position = ((thread_id - 1) * 7) % #people
   local get_path = GET_PATHS[route]
   if get_path then
      -- GETs never change: build each person's request once.
      prebuilt = {}
      for index, person in ipairs(people) do
         prebuilt[index] = wrk.format("GET", get_path(person), headers_for(person, false))
      end
   elseif route ~= "create" and route ~= "bulk" then
      error("unknown route " .. tostring(route))
   end
end

function request()
   if prebuilt then
      position = position % #prebuilt + 1
      return prebuilt[position]
   end
   local person = next_person()
   if route == "create" then
      return wrk.format("POST", "/api/v1/health-metrics", headers_for(person, true), create_body())
   end
   return wrk.format("POST", "/api/v1/health-metrics/bulk", headers_for(person, true), bulk_body())
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
      '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"latency_p50_us":%d,' ..
      '"latency_p90_us":%d,"latency_p99_us":%d,"latency_max_us":%d,"latency_mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes, errors.connect, errors.read, errors.write,
      errors.status, errors.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean))
end
