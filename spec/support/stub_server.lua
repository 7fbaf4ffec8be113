-- A scriptable HTTP/1.1 server for the client's specs, run as its own process:
--
--   lua5.4 spec/support/stub_server.lua SCRIPT LOG
--
-- prints its port on the first line of stdout, then serves until killed (or
-- until it has been idle for script.idle_exit seconds). Every request it reads
-- is appended to LOG as one JSON line (see `record`) before it is answered.
--
-- SCRIPT is a Lua file returning a table:
--   port = N              -- listen on N (default: any free port)
--   listen_after = S      -- open the listening socket only after S seconds
--   responses = { R, ... } -- answered in order; the last one repeats
--   respond = function(req, n) return R end  -- instead of responses
-- and each response R is a table:
--   status, headers = { Name = value }, body
--   delay = S             -- hold the answer S seconds (other connections go on)
--   close = true          -- close the connection without answering
--   partial = N           -- send the headers and N bytes of the body, then close
--   drip = { bytes = N, every = S } -- send the body N bytes at a time
--   no_length = true      -- no Content-Length: the body ends when the connection closes
--   interim = true        -- a "100 Continue" block (with a header) before the answer
-- Connections stay open between requests (keep-alive) unless the request or
-- the response says otherwise. When a client closes a connection the stub
-- notices, it logs { event = "closed", conn = N } instead of a request.
local socket = require "socket"
local cjson = require "cjson"

local script_path, log_path = arg[1], arg[2]
assert(script_path and log_path, "usage: stub_server.lua SCRIPT LOG")
local script = assert(dofile(script_path))
local log = assert(io.open(log_path, "a"))

local reasons = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [204] = "No Content",
  [400] = "Bad Request", [403] = "Forbidden", [404] = "Not Found", [408] = "Request Timeout",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

-- ---- a small coroutine scheduler over socket.select ----------------------
local readers, writers, timers = {}, {}, {}
local last_activity = socket.gettime()

local function wait_read(sock)
  readers[sock] = coroutine.running()
  coroutine.yield()
end

local function wait_write(sock)
  writers[sock] = coroutine.running()
  coroutine.yield()
end

local function sleep(seconds)
  timers[#timers + 1] = { at = socket.gettime() + seconds, co = coroutine.running() }
  coroutine.yield()
end

local function resume(co)
  local ok, err = coroutine.resume(co)
  if not ok then io.stderr:write("stub_server: ", tostring(err), "\n") end
end

local function spawn(fn)
  resume(coroutine.create(fn))
end

-- ---- connections -----------------------------------------------------------
local count, active, conn_seq = 0, 0, 0

local function send_all(sock, data)
  local pos = 1
  while pos <= #data do
    local last, err, partial = sock:send(data, pos)
    if last then
      pos = last + 1
    elseif err == "timeout" then
      pos = partial + 1
      if pos <= #data then wait_write(sock) end
    else
      return false
    end
  end
  return true
end

local function choose(req, n)
  if script.respond then return script.respond(req, n) or { status = 500 } end
  local list = script.responses or { { status = 200, body = "" } }
  return list[math.min(n, #list)]
end

local function head_text(status, headers)
  local lines = { ("HTTP/1.1 %d %s"):format(status, reasons[status] or "Status") }
  for name, value in pairs(headers) do
    lines[#lines + 1] = name .. ": " .. value
  end
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

local function record(req)
  log:write(cjson.encode(req), "\n")
  log:flush()
end

local function serve(sock)
  conn_seq = conn_seq + 1
  local conn = conn_seq
  sock:settimeout(0)
  sock:setoption("tcp-nodelay", true)
  local buf = ""
  local function peer_closed()
    record({ event = "closed", conn = conn, t = socket.gettime() })
    sock:close()
  end
  local function more()
    wait_read(sock)
    local data, err, partial = sock:receive(65536)
    local chunk = data or partial
    if chunk and #chunk > 0 then
      buf = buf .. chunk
      return true
    end
    return err ~= "closed"
  end
  while true do
    local head_end = buf:find("\r\n\r\n", 1, true)
    while not head_end do
      if #buf > 0 and not buf:find("^%u") then
        -- not HTTP (a TLS hello, say): answer in plain text, as a server would
        send_all(sock, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
        sock:close()
        return
      end
      if not more() then return peer_closed() end
      head_end = buf:find("\r\n\r\n", 1, true)
    end
    local head = buf:sub(1, head_end - 1)
    buf = buf:sub(head_end + 4)
    local method, target, version = head:match("^(%u+) (%S+) HTTP/(1%.%d)\r?\n?")
    if not method then sock:close() return end  -- not HTTP (a TLS hello, say)
    local headers = {}
    for name, value in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do
      name = name:lower()
      headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
    end
    local length = tonumber(headers["content-length"] or "0") or 0
    while #buf < length do
      if not more() then return peer_closed() end
    end
    local body = buf:sub(1, length)
    buf = buf:sub(length + 1)
    local path, query = target:match("^([^?]*)%??(.*)$")
    count = count + 1
    active = active + 1
    local req = { n = count, conn = conn, method = method, path = path, query = query,
                  headers = headers, body = body, open = active, t = socket.gettime() }
    record(req)
    local ok, res = pcall(choose, req, count)
    if not ok then
      io.stderr:write("stub_server: respond: ", tostring(res), "\n")
      res = { status = 500, body = tostring(res) }
    end
    if res.delay then sleep(res.delay) end
    if res.close then
      active = active - 1
      sock:close()
      return
    end
    local status = res.status or 200
    local out_headers = {}
    for k, v in pairs(res.headers or {}) do out_headers[k] = v end
    local rbody = res.body or ""
    local keep = version == "1.1" and (headers.connection or ""):lower() ~= "close"
      and not res.no_length and not res.partial
    if not res.no_length then out_headers["Content-Length"] = tostring(#rbody) end
    if not keep then out_headers["Connection"] = "close" end
    local sent = true
    if res.interim then
      sent = send_all(sock, "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n")
    end
    if sent and res.partial then
      send_all(sock, head_text(status, out_headers) .. rbody:sub(1, res.partial))
      sent = false
    elseif sent and res.drip then
      sent = send_all(sock, head_text(status, out_headers))
      local pos = 1
      while sent and pos <= #rbody do
        sleep(res.drip.every or 0.05)
        sent = send_all(sock, rbody:sub(pos, pos + (res.drip.bytes or 1) - 1))
        pos = pos + (res.drip.bytes or 1)
      end
    elseif sent then
      sent = send_all(sock, head_text(status, out_headers) .. rbody)
    end
    active = active - 1
    if not sent and not res.partial then return peer_closed() end
    if not keep then
      sock:close()
      return
    end
  end
end

-- ---- main loop -------------------------------------------------------------
local server
local function listen()
  server = assert(socket.bind("127.0.0.1", script.port or 0, 64))
  server:settimeout(0)
end

if script.listen_after then
  assert(script.port, "listen_after needs a fixed port")
  timers[#timers + 1] = { at = socket.gettime() + script.listen_after, fn = listen }
else
  listen()
end
local port = script.port or select(2, server:getsockname())
io.stdout:write(tostring(port), "\n")
io.stdout:flush()

local idle_exit = script.idle_exit or 120
while true do
  local now = socket.gettime()
  local wait = 0.5
  for _, t in ipairs(timers) do wait = math.min(wait, math.max(0, t.at - now)) end
  local recvt, sendt = {}, {}
  if server then recvt[1] = server end
  for s in pairs(readers) do recvt[#recvt + 1] = s end
  for s in pairs(writers) do sendt[#sendt + 1] = s end
  local readable, writable = socket.select(recvt, sendt, wait)
  for _, s in ipairs(readable) do
    if s == server then
      local client = server:accept()
      while client do
        last_activity = socket.gettime()
        spawn(function() serve(client) end)
        client = server:accept()
      end
    elseif readers[s] then
      local co = readers[s]
      readers[s] = nil
      last_activity = socket.gettime()
      resume(co)
    end
  end
  for _, s in ipairs(writable) do
    if writers[s] then
      local co = writers[s]
      writers[s] = nil
      resume(co)
    end
  end
  now = socket.gettime()
  local due, later = {}, {}
  for _, t in ipairs(timers) do
    if t.at <= now then due[#due + 1] = t else later[#later + 1] = t end
  end
  timers = later
  for _, t in ipairs(due) do
    if t.fn then t.fn() else resume(t.co) end
  end
  if next(readers) == nil and next(writers) == nil and #timers == 0
     and now - last_activity > idle_exit then
    os.exit(0)
  end
end
