-- The sandbox for specs: starts `bin/unleashed-sandbox --port 0` as a child
-- process and talks to it over plain sockets, with a request signer of its
-- own so that specs of the sandbox never depend on the client library.
--
--   local sandbox = require "support.sandbox"
--   local sb = sandbox.start{ seed = 20, admin = true, latency_ms = 5, args = { "--quota", "10" } }
--   local status, headers, body = sb:signed("GET", "/PurchaseOrders", { { "orderNumber", "PO-00000001" } })
--   sb:stop()
local socket = require "socket"
local cjson = require "cjson"
local core = require "unleashed.core"

local M = {}

local ROOT = os.getenv("UNLEASHED_ROOT") or "."

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

M.quote = quote
M.root = ROOT

-- option name -> flag
local FLAGS = {
  seed = "--seed", latency_ms = "--latency-ms", jitter_ms = "--jitter-ms", fail_rate = "--fail-rate",
  drop_rate = "--drop-rate", throttle = "--throttle", quota = "--quota",
  bad_body_rate = "--bad-body-rate", state = "--state", tls_cert = "--tls-cert", tls_key = "--tls-key",
  api_id = "--api-id", api_key = "--api-key", host = "--host",
}
local FLAG_ORDER = { "host", "seed", "api_id", "api_key", "latency_ms", "jitter_ms", "fail_rate", "drop_rate",
                     "throttle", "quota", "bad_body_rate", "state", "tls_cert", "tls_key" }

local function command_line(opts, args, program)
  local words = program and {} or { "lua5.4", quote(ROOT .. "/bin/unleashed-sandbox") }
  for _, w in ipairs(program or {}) do words[#words + 1] = quote(w) end
  for _, a in ipairs(args) do words[#words + 1] = quote(a) end
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. quote(v) end
  table.sort(env)
  return (#env > 0 and "env " .. table.concat(env, " ") .. " " or "") .. table.concat(words, " ")
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- Runs the command to its end: exit code, stdout, stderr. For flags that
-- make it exit at once (--help, bad flags).
function M.run(args, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local cmd = command_line(opts, args) .. " </dev/null >" .. quote(out) .. " 2>" .. quote(err)
  local ok, how, code = os.execute(cmd)
  local o, e = read_all(out), read_all(err)
  os.remove(out)
  os.remove(err)
  if how ~= "exit" then code = 128 + code end
  return code, o, e, ok
end

-- ---- a small HTTP/1.1 client ------------------------------------------------------

-- One request on a fresh connection. Returns status, headers (names
-- lower-cased), body, and an error such as "closed" when the connection
-- ended before the declared body did (then body is what arrived).
local function http(host, port, method, target, headers, body)
  local c = assert(socket.tcp())
  c:settimeout(15)
  assert(c:connect(host, port))
  local lines = { ("%s %s HTTP/1.1"):format(method, target), ("Host: %s:%d"):format(host, port),
                  "Connection: close" }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  assert(c:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")))
  local status_line, err = c:receive("*l")
  if not status_line then
    c:close()
    return nil, {}, nil, err
  end
  local status = tonumber(status_line:match("^HTTP/1%.%d (%d%d%d)"))
  local hdrs = {}
  while true do
    local line = c:receive("*l")
    if line == nil or line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then hdrs[k:lower()] = v end
  end
  local data, rerr, partial
  if hdrs["content-length"] then
    data, rerr, partial = c:receive(tonumber(hdrs["content-length"]))
  else
    data, rerr, partial = c:receive("*a")
  end
  c:close()
  if data == nil then return status, hdrs, partial, rerr end
  return status, hdrs, data
end
M.http = http

-- RFC 3986: unreserved characters stay, every other byte is %XX.
local function encode(s)
  return (tostring(s):gsub("[^A-Za-z0-9%-%._~]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end
M.encode = encode

--- The signed text and the wire text of an ordered list of { key, value } pairs.
function M.query(pairs_in_order)
  local signed, wire = {}, {}
  for i, kv in ipairs(pairs_in_order or {}) do
    signed[i] = kv[1] .. "=" .. tostring(kv[2])
    wire[i] = encode(kv[1]) .. "=" .. encode(kv[2])
  end
  return table.concat(signed, "&"), table.concat(wire, "&")
end

-- ---- the running sandbox ----------------------------------------------------------

local Sandbox = {}
Sandbox.__index = Sandbox

--- Starts a server process whose first stdout line is "listening on URL":
-- the sandbox command with args, or opts.program = { words } instead of it;
-- opts.stderr = a file for its stderr.
-- Returns the handle start returns, without credentials.
function M.spawn(args, opts)
  opts = opts or {}
  local cmd = "echo $$; exec " .. command_line(opts, args, opts.program)
    .. (opts.stderr and " 2>" .. quote(opts.stderr) or "")
  local p = assert(io.popen("sh -c " .. quote(cmd), "r"))
  local pid = tonumber(p:read("l"))
  local listening = p:read("l")
  local url = listening and listening:match("^listening on (https?://.+)$")
  if not url then
    local _, _, code = p:close()
    error(("sandbox did not start (exit %s), first line %q"):format(tostring(code), tostring(listening)), 2)
  end
  return setmetatable({ pipe = p, pid = pid, base_url = url, listening_line = listening,
                        host = url:match("^https?://%[?([^/%]]+)%]?:%d+$"),
                        port = tonumber(url:match(":(%d+)$")) }, Sandbox)
end

--- Starts a sandbox on a free loopback port. opts: the command's options by
-- their snake_case names (seed, latency_ms, throttle = "5/1", ...), admin =
-- true, args = { extra flags }, env = { NAME = value } for the process.
function M.start(opts)
  opts = opts or {}
  local args = { "--port", "0" }
  for _, name in ipairs(FLAG_ORDER) do
    if opts[name] ~= nil then
      args[#args + 1] = FLAGS[name]
      args[#args + 1] = tostring(opts[name])
    end
  end
  if opts.admin then args[#args + 1] = "--admin" end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end

  local sb = M.spawn(args, opts)
  sb.api_id, sb.api_key = opts.api_id, opts.api_key
  if not opts.api_id then
    local line = sb.pipe:read("l")
    sb.credentials_line = line
    sb.api_id, sb.api_key = (line or ""):match("^credentials UNLEASHED_API_ID=(%S+) UNLEASHED_API_KEY=(%S+)$")
    if not sb.api_id then
      sb:stop()
      error(("sandbox printed no credentials line, got %q"):format(tostring(line)), 2)
    end
  end
  return sb
end

--- A request with no signing: status, headers, body (and an error when the
-- connection closed before the body was complete).
function Sandbox:raw(method, path_and_query, headers, body)
  return http(self.host, self.port, method, path_and_query, headers, body)
end

--- A signed request: query is an ordered list of { key, value } pairs; body
-- a string or a table (sent as JSON).
function Sandbox:signed(method, path, query, body, extra_headers)
  local signed, wire = M.query(query)
  if type(body) == "table" then body = cjson.encode(body) end
  local headers = {
    ["Accept"] = "application/json",
    ["Content-Type"] = "application/json",
    ["api-auth-id"] = self.api_id,
    ["api-auth-signature"] = core.sign(signed, self.api_key),
    ["client-type"] = "spec/SandboxTests",
  }
  for k, v in pairs(extra_headers or {}) do headers[k] = v end
  return self:raw(method, wire ~= "" and path .. "?" .. wire or path, headers, body)
end

--- The signed request's body decoded (asserting the status, 200 by default).
function Sandbox:json(method, path, query, body, want)
  local status, _, text = self:signed(method, path, query, body)
  assert(status == (want or 200), ("%s %s: status %s, body %s"):format(method, path, tostring(status),
                                                                        tostring(text)))
  return cjson.decode(text)
end

function Sandbox:stats()
  local status, _, body = self:raw("GET", "/_sandbox/stats")
  assert(status == 200, "GET /_sandbox/stats: status " .. tostring(status))
  return cjson.decode(body)
end

function Sandbox:reset()
  local status = self:raw("POST", "/_sandbox/reset", nil, "")
  assert(status == 200, "POST /_sandbox/reset: status " .. tostring(status))
end

--- Sends a signal (default TERM) without waiting.
function Sandbox:kill(signal)
  if self.pipe then
    os.execute(("kill -%s %d 2>/dev/null"):format(signal or "TERM", self.pid))
  end
end

--- Waits for the process to end (after a signal); returns its exit code,
-- 128 + N for a death by signal N. Idempotent.
function Sandbox:wait()
  if self.pipe then
    local _, how, code = self.pipe:close()
    self.pipe = nil
    self.exit_code = how == "exit" and code or 128 + code
  end
  return self.exit_code
end

--- SIGTERM, then waits: returns the exit code, asserting it is 0 unless
-- told otherwise (stop{ expect = n }).
function Sandbox:stop(opts)
  self:kill("TERM")
  local code = self:wait()
  local want = opts and opts.expect or 0
  assert(code == want, ("sandbox exited with %d, expected %d"):format(code, want))
  return code
end

-- A spec that fails before its stop must not leave the process running, nor
-- leave busted waiting on the pipe when it closes it at exit: the sandbox is
-- marked for finalisation after its pipe, so this runs first.
function Sandbox:__gc()
  self:kill("TERM")
  self:wait()
end
Sandbox.__close = Sandbox.__gc

return M
