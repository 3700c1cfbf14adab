-- wrk_post.lua — wrk script of bench/serve.sh: POSTs one file and prints one summary line.
--   wrk -t1 -c16 -d10s --latency -s bench/wrk_post.lua URL -- BODY_FILE CONTENT_TYPE [ACCEPT]
-- The summary line: "WRK rps=.. ok_rps=.. p50_ms=.. p99_ms=.. requests=.. errors=.. (connect
-- read write status timeout)"; status errors are answers outside 2xx/3xx, and ok_rps counts
-- only the other answers. Latencies are of every answer.
function init(args)
   local f = assert(io.open(args[1], "rb"), "wrk_post.lua: cannot read " .. tostring(args[1]))
   wrk.method = "POST"
   wrk.body = f:read("*a")
   f:close()
   wrk.headers["Content-Type"] = args[2] or "application/octet-stream"
   if args[3] and args[3] ~= "" then
      wrk.headers["Accept"] = args[3]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.status + e.timeout
   local secs = summary.duration / 1e6
   io.write(string.format(
      "WRK rps=%.1f ok_rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests / secs, (summary.requests - e.status) / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests, errors,
      e.connect, e.read, e.write, e.status, e.timeout))
end
