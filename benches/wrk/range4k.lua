-- 4 KiB ranges at random offsets of a file of FILE_SIZE bytes (env, default 10 MiB).
-- Every thread seeds itself differently, so threads do not walk the same offsets.
local size = tonumber(os.getenv("FILE_SIZE")) or 10485760
local span = 4096

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000) + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
end

function request()
  local first = math.random(0, size - span)
  return wrk.format("GET", nil, { ["Range"] = "bytes=" .. first .. "-" .. (first + span - 1) })
end

-- No response() callback: it makes wrk build a Lua table per response, which on a 2-core
-- machine takes CPU from the servers. serve.sh checks both servers answer 206 with 4096 bytes
-- before the runs instead.
