-- Shared by the benchmark scripts: clocks, peak memory, one-line JSON results.
local cjson = require "cjson"
local socket = require "socket"

local M = {}

M.now = socket.gettime          -- wall clock, seconds (float)
M.cpu = os.clock                -- this process's CPU time, user + system

local function status_kb(field)
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+)"))
end

-- Peak and current resident memory of this process in kB, or nil off Linux.
function M.vmhwm_kb() return status_kb("VmHWM") end
function M.rss_kb() return status_kb("VmRSS") end

-- Prints a result table as one JSON line, the form run.lua reads back.
function M.emit(t)
  io.stdout:write(cjson.encode(t), "\n")
  io.stdout:flush()
end

-- Median of a list of numbers.
function M.median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- Credentials and address of the sandbox under test, from the environment
-- run.lua sets (kept off command lines).
function M.target()
  local base_url = assert(os.getenv("BENCH_BASE_URL"), "BENCH_BASE_URL is not set")
  return base_url, assert(os.getenv("BENCH_API_ID")), assert(os.getenv("BENCH_API_KEY"))
end

return M
