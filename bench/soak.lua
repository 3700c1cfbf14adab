-- soak.lua — wrk script of bench/soak.sh: a fixed mix of valid and invalid requests over
-- every endpoint, an optional pause per request (the rate), and a count of answers by class.
--   wrk -t2 -c16 -d60s -s bench/soak.lua URL -- DIR DELAY_MS
-- DIR holds g28.png, bad.png, g30.png, batch.json, v2.json, lat.json. DELAY_MS: pause
-- before each request of a connection (0 = as fast as possible).
-- The summary line: "SOAK requests=.. rps=.. s2xx=.. s4xx=.. s5xx=.. other=.. connect=..
-- read=.. write=.. timeout=.. p50_ms=.. p99_ms=.." (s* count answers by status class).
local reqs = {}
local delay_ms = 0
counts = {s2 = 0, s4 = 0, s5 = 0, other = 0} -- global: done() reads it with thread:get
local threads = {}
local i = 0

local function slurp(p)
   local f = assert(io.open(p, "rb"), "soak.lua: cannot read " .. p)
   local d = f:read("*a")
   f:close()
   return d
end

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local dir = args[1]
   delay_ms = tonumber(args[2] or "0")
   local png, bad, g30 = slurp(dir .. "/g28.png"), slurp(dir .. "/bad.png"), slurp(dir .. "/g30.png")
   local batch, v2, lat = slurp(dir .. "/batch.json"), slurp(dir .. "/v2.json"), slurp(dir .. "/lat.json")
   local P = {["Content-Type"] = "image/png"}
   local J = {["Content-Type"] = "application/json"}
   local JA = {["Content-Type"] = "application/json", ["Accept"] = "application/json"}
   local mix = {
      -- valid
      {"POST", "/v1/denoise?model=mlp", P, png},
      {"POST", "/v1/denoise?model=conv", P, png},
      {"POST", "/v1/inpaint?model=conv", P, png},
      {"POST", "/v1/score?model=conv", JA, batch},
      {"POST", "/v1/encode?model=mlp", JA, batch},
      {"POST", "/v1/decode?model=mlp", J, lat},
      {"POST", "/v1/interpolate?model=mlp&steps=3", J, batch},
      {"POST", "/v2/models/mlp/infer", J, v2},
      {"GET", "/v1/models", nil, nil},
      {"GET", "/v2/models/conv", nil, nil},
      {"GET", "/healthz", nil, nil},
      {"GET", "/readyz", nil, nil},
      {"GET", "/metrics", nil, nil},
      {"POST", "/v1/denoise?model=mlp", P, png},
      {"POST", "/v2/models/mlp/infer", J, v2},
      -- invalid: each answered 4xx on a connection that stays open
      {"POST", "/v1/denoise?model=mlp", P, bad},         -- 400 corrupt PNG
      {"POST", "/v1/denoise?model=nope", P, png},        -- 404 unknown model
      {"DELETE", "/v1/denoise", nil, nil},               -- 405
      {"POST", "/v1/denoise?model=mlp", P, g30},         -- 422 wrong size
      {"POST", "/v1/score?model=conv&threshold=x", P, png}, -- 400 bad query
      {"POST", "/v2/models/mlp/infer", J, "{\"inputs\":[]}"}, -- 400
      {"GET", "/v1/nothing", nil, nil},                  -- 404
   }
   for _, m in ipairs(mix) do
      table.insert(reqs, wrk.format(m[1], m[2], m[3], m[4]))
   end
   i = math.random(#reqs)
end

function request()
   i = i % #reqs + 1
   return reqs[i]
end

function delay()
   return delay_ms
end

function response(status, headers, body)
   if status >= 200 and status < 300 then counts.s2 = counts.s2 + 1
   elseif status >= 400 and status < 500 then counts.s4 = counts.s4 + 1
   elseif status >= 500 then counts.s5 = counts.s5 + 1
   else counts.other = counts.other + 1 end
end

function done(summary, latency, requests)
   local t = {s2 = 0, s4 = 0, s5 = 0, other = 0}
   for _, th in ipairs(threads) do
      local c = th:get("counts")
      for k, v in pairs(c) do t[k] = t[k] + v end
   end
   local e = summary.errors
   io.write(string.format(
      "SOAK requests=%d rps=%.1f s2xx=%d s4xx=%d s5xx=%d other=%d connect=%d read=%d write=%d timeout=%d p50_ms=%.3f p99_ms=%.3f\n",
      summary.requests, summary.requests / (summary.duration / 1e6), t.s2, t.s4, t.s5, t.other,
      e.connect, e.read, e.write, e.timeout, latency:percentile(50) / 1000,
      latency:percentile(99) / 1000))
end
