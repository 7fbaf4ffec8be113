-- The sandbox under abuse, measured: how long a normal request waits for its
-- answer while 300 sockets trickle request headers (one line every 5 s, each
-- reconnecting when the sandbox closes it), and while 64 clients hold 4 idle
-- kept-alive connections each, against the same request on an idle sandbox
-- in the same run; and the sandbox's peak RSS under a flood of 16 MiB POSTs
-- without a valid signature.
--
--   lua5.4 bench/abuse.lua [SECONDS]      (default 12 s per scenario)
--
-- Run from a checkout after `make` (it finds lua/ and build/ beside it).
local root = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = ("%s/lua/?.lua;%s/lua/?/init.lua;"):format(root, root) .. package.path
package.cpath = ("%s/%s/?.so;"):format(root, os.getenv("BUILD") or "build") .. package.cpath

local socket = require "socket"
local core = require "unleashed.core"

local SECONDS = tonumber(arg[1]) or 12
local _
local SLOW, LINE_EVERY = 300, 5.0
local IDLE = 64 * 4
local EVERY = 0.2            -- a normal request this often
local TARGET = 1.0           -- seconds a normal request may wait
local FLOOD, SIXTEEN_MB = 32, 16 * 1024 * 1024

local API_ID, API_KEY = "bench-abuse", "bench-abuse-key"

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function start_sandbox()
  local p = assert(io.popen(("echo $$; exec lua5.4 %s --port 0 --api-id %s --api-key %s 2>/dev/null")
    :format(quote(root .. "/bin/unleashed-sandbox"), API_ID, API_KEY), "r"))
  local pid = tonumber(p:read("l"))
  local port = tonumber((p:read("l") or ""):match(":(%d+)$"))
  assert(port, "the sandbox did not start")
  return { pipe = p, pid = pid, port = port }
end

local function stop_sandbox(sb)
  os.execute("kill " .. sb.pid)
  sb.pipe:close()
end

local function vm_hwm_kb(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local kb = tonumber(f:read("a"):match("VmHWM:%s*(%d+) kB"))
  f:close()
  return kb
end

-- One signed GET on a fresh connection: seconds to the whole answer, or nil.
local function normal_request(sb)
  local t0 = socket.gettime()
  local c = socket.tcp()
  c:settimeout(5)
  if not c:connect("127.0.0.1", sb.port) then c:close() return nil end
  c:send(("GET /Suppliers?pageSize=1 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n" ..
          "api-auth-id: %s\r\napi-auth-signature: %s\r\nConnection: close\r\n\r\n")
         :format(API_ID, core.sign("pageSize=1", API_KEY)))
  local line = c:receive("*l")
  local rest = line and c:receive("*a")
  c:close()
  if not (line and line:find(" 200 ", 1, true) and rest) then return nil end
  return socket.gettime() - t0
end

-- Runs `tick` (the abuse's upkeep) for SECONDS with a normal request every
-- EVERY seconds; returns the sorted waits and the count of unanswered ones.
local function sample(sb, tick)
  local waits, failed = {}, 0
  local stop, next_req = socket.gettime() + SECONDS, socket.gettime()
  while socket.gettime() < stop do
    if tick then tick() end
    if socket.gettime() >= next_req then
      local w = normal_request(sb)
      if w then waits[#waits + 1] = w else failed = failed + 1 end
      next_req = socket.gettime() + EVERY
    else
      socket.sleep(0.01)
    end
  end
  table.sort(waits)
  return waits, failed
end

local function slow_socket(sb, i)
  local c = socket.tcp()
  c:settimeout(2)
  if not c:connect("127.0.0.1", sb.port) then c:close() return nil end
  c:send("GET /Suppliers HTTP/1.1\r\nHost: x\r\nX-Slow: " .. i .. "\r\n")
  c:settimeout(0)
  return { sock = c, at = socket.gettime() + LINE_EVERY }
end

local function slowloris(sb)
  local list, reconnects = {}, 0
  for i = 1, SLOW do list[i] = slow_socket(sb, i) end
  local tick = function()
    local now = socket.gettime()
    for i = 1, SLOW do
      local s, err = list[i], nil
      if s then _, err = s.sock:receive(1) end
      if s == nil or err == "closed" then
        if s then s.sock:close() end
        list[i] = slow_socket(sb, i)
        reconnects = reconnects + 1
      elseif now >= s.at then
        s.sock:send("X-More: " .. i .. "\r\n")
        s.at = now + LINE_EVERY
      end
    end
  end
  return tick, function()
    for _, s in ipairs(list) do if s then s.sock:close() end end
    return reconnects
  end
end

local function idle_clients(sb)
  local list = {}
  for i = 1, IDLE do
    local c = socket.tcp()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", sb.port))
    c:send("GET /Suppliers HTTP/1.1\r\nHost: x\r\n\r\n")       -- unsigned: a 403, kept alive
    local len
    repeat
      local line = c:receive("*l")
      len = len or (line and tonumber(line:match("^[Cc]ontent%-[Ll]ength: (%d+)")))
    until line == nil or line == ""
    if len then c:receive(len) end
    list[i] = c
  end
  return function() for _, c in ipairs(list) do c:close() end end
end

local function flood(sb)
  local conns, chunk = {}, ("x"):rep(65536)
  for i = 1, FLOOD do
    local c = assert(socket.connect("127.0.0.1", sb.port))
    c:settimeout(0)
    local head = ("POST /PurchaseOrders/%08d-0000-4000-8000-000000000000 HTTP/1.1\r\nHost: x\r\n" ..
                  "Content-Type: application/json\r\napi-auth-id: %s\r\napi-auth-signature: bad\r\n" ..
                  "Content-Length: %d\r\n\r\n"):format(i, API_ID, SIXTEEN_MB)
    conns[i] = { sock = c, data = head, pos = 1, left = SIXTEEN_MB }
  end
  local taken, active, deadline = 0, FLOOD, socket.gettime() + 60
  while active > 0 and socket.gettime() < deadline do
    local w = {}
    for _, st in ipairs(conns) do if not st.done then w[#w + 1] = st.sock end end
    local _, ready = socket.select(nil, w, 0.2)
    for _, st in ipairs(conns) do
      if not st.done and ready[st.sock] then
        if st.pos > #st.data and st.left > 0 then
          st.data, st.pos = chunk:sub(1, math.min(#chunk, st.left)), 1
          st.left = st.left - #st.data
        end
        local last, err, partial = st.sock:send(st.data, st.pos)
        local upto = last or partial or st.pos - 1
        taken = taken + (upto - st.pos + 1)
        st.pos = upto + 1
        if (err and err ~= "timeout") or (st.pos > #st.data and st.left == 0) then
          st.done, active = true, active - 1
        end
      end
    end
  end
  for _, st in ipairs(conns) do st.sock:close() end
  return taken
end

local function pct(list, p)
  if #list == 0 then return nil end
  return list[math.max(1, math.ceil(#list * p))]
end

local function ms(x) return x and ("%.1f ms"):format(x * 1000) or "-" end

local function row(name, waits, failed, base)
  local worst = waits[#waits]
  local ok = failed == 0 and worst ~= nil and worst <= TARGET
  print(("%-48s %4d answered %3d unanswered  median %9s  p99 %9s  max %9s  %s  %s"):format(
    name, #waits, failed, ms(pct(waits, 0.5)), ms(pct(waits, 0.99)), ms(worst),
    base and pct(waits, 0.5) and ("%.1fx idle"):format(pct(waits, 0.5) / base) or "          ",
    ok and "MET (<= 1 s)" or "MISSED (<= 1 s)"))
end

print(("sandbox abuse, %d s per scenario, a normal request every %.1f s (a fresh connection, signed GET)")
  :format(SECONDS, EVERY))

local sb = start_sandbox()
local waits, failed = sample(sb)
local base = pct(waits, 0.5)
row("idle sandbox (baseline)", waits, failed)

local tick, finish = slowloris(sb)
waits, failed = sample(sb, tick)
local reconnects = finish()
row(("%d sockets, a header line every %g s"):format(SLOW, LINE_EVERY), waits, failed, base)
print(("  (the sandbox closed slow sockets %d times; each reconnected at once)"):format(reconnects))

local close_idle = idle_clients(sb)
waits, failed = sample(sb)
close_idle()
row(("%d idle kept-alive connections (64 clients x 4)"):format(IDLE), waits, failed, base)
stop_sandbox(sb)

sb = start_sandbox()
for _ = 1, 3 do normal_request(sb) end
local before = vm_hwm_kb(sb.pid)
local taken = flood(sb)
local answered = normal_request(sb) ~= nil
local grown = vm_hwm_kb(sb.pid) - before
print(("%d POSTs of 16 MiB, bad signatures, at once: the sandbox read %.1f MiB; peak RSS %d KiB -> %d KiB " ..
       "(%+d KiB); answers after it: %s"):format(FLOOD, taken / 1048576, before, before + grown, grown,
       answered and "yes" or "no"))
stop_sandbox(sb)
