-- Starts and stops spec/support/stub_server.lua from a spec and reads back
-- the requests it saw.
local cjson = require "cjson"

local M = {}

local root = os.getenv("UNLEASHED_ROOT") or "."
local server_path = root .. "/spec/support/stub_server.lua"

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local Stub = {}
Stub.__index = Stub

local function read_log(path, want_events)
  local list = {}
  local f = io.open(path, "r")
  if not f then return list end
  for line in f:lines() do
    local entry = cjson.decode(line)
    if (entry.event ~= nil) == want_events then list[#list + 1] = entry end
  end
  f:close()
  return list
end

-- The requests the stub has read so far, in arrival order.
function Stub:requests()
  return read_log(self.log_path, false)
end

-- Connection events ({ event = "closed", conn = N }): a client hung up.
function Stub:events()
  return read_log(self.log_path, true)
end

function Stub:stop()
  if self.stopped then return end
  self.stopped = true
  os.execute("kill " .. self.pid .. " 2>/dev/null")
  self.pipe:close()
  os.remove(self.script_path)
  os.remove(self.log_path)
end

-- script_text: Lua source returning the script table stub_server.lua reads.
function M.start(script_text)
  local script_path = os.tmpname()
  local log_path = os.tmpname()
  local f = assert(io.open(script_path, "w"))
  f:write(script_text)
  f:close()
  -- popen's shell prints its own pid, then becomes the server: the pid is the
  -- server's, for kill.
  local pipe = assert(io.popen(("echo $$; exec lua5.4 %s %s %s"):format(
    quote(server_path), quote(script_path), quote(log_path)), "r"))
  local pid = assert(tonumber(pipe:read("l")), "stub: no pid")
  local port = tonumber(pipe:read("l"))
  if not port then
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
    error("stub server did not start (see stderr)")
  end
  return setmetatable({ pid = pid, port = port, pipe = pipe, script_path = script_path,
                        log_path = log_path, url = "http://127.0.0.1:" .. port }, Stub)
end

-- A loopback port nothing listens on (bound, then released).
function M.free_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

function M.sleep(seconds)
  require("socket").sleep(seconds)
end

return M
