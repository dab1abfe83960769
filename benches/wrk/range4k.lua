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

-- Fail loudly if a server answers anything but 206 (wrk would only count it).
local bad = 0
function response(status, headers, body)
  if status ~= 206 then
    bad = bad + 1
    if bad == 1 then
      io.stderr:write("unexpected status " .. status .. "\n")
    end
  end
end
