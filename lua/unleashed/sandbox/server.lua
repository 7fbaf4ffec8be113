--- unleashed.sandbox.server: the `unleashed-sandbox` command around an app.
--
-- The app (unleashed.sandbox) answers as the API does, with no faults and no
-- latency. This module wraps it with what the command's flags turn on, in
-- this order: the admin endpoints, call counting, the monthly quota,
-- throttling, injected 5xx faults, the app itself, dropped responses, bad
-- bodies and latency; and it keeps the state file.
local httpd = require "unleashed.sandbox.httpd"
local guid = require "unleashed.guid"
-- A private instance: settings another module makes on the shared one do not
-- change what the sandbox writes.
local cjson = require("cjson").new()

local M = {}

M.usage = [[
usage: unleashed-sandbox [options]
A local Unleashed API for tests and trials. Prints "listening on BASE-URL"
(and, without --api-id/--api-key, the credentials it made up), then serves
until SIGINT or SIGTERM.

  --host ADDR           address to listen on (default 127.0.0.1)
  --port N              port, 0 for a free one (default 0)
  --api-id ID           the account's API id (with --api-key)
  --api-key KEY         the account's API key (with --api-id)
  --seed N              data seed: N purchase orders, the same data for the same N (default 100)
  --latency-ms MS       hold every response MS milliseconds
  --jitter-ms MS        plus a uniform 0..MS milliseconds
  --fail-rate P         answer a fraction P of calls with 500/502/503, before the API sees them
  --drop-rate P         cut a fraction P of responses mid-body, after the API processed them
  --throttle K/SECONDS  429 with Retry-After past K calls in any SECONDS window
  --quota N             after N calls every call gets the monthly-quota 429
  --bad-body-rate P     a fraction P of 2xx JSON bodies truncated or not JSON
  --state FILE          load the orders from FILE and keep it up to date
  --tls-cert FILE       serve HTTPS with this PEM certificate (with --tls-key)
  --tls-key FILE        the certificate's PEM private key
  --admin               GET /_sandbox/stats, POST /_sandbox/reset (no signature)
  --touch-rate N        change N random purchase orders a second (the change ticker)
  --log                 one line per request on stderr
  --help                this text
]]

-- ---- flags -------------------------------------------------------------------

-- The largest --seed, and so the largest seed a state file may name: loading
-- a state regenerates its seeded orders, so its seed is held to the flag's
-- bound (a state saying seed 100000000 would otherwise grow without end).
M.MAX_SEED = 1000000
-- The largest state file read: about 150,000 changed orders.
M.MAX_STATE_BYTES = 256 * 1024 * 1024

local function integer_in(lo, hi)
  return function(v)
    local n = math.tointeger(tonumber(v))
    if n == nil or not v:match("^%d+$") or n < lo or (hi and n > hi) then
      return nil, hi and ("must be an integer in %d..%d"):format(lo, hi)
        or ("must be an integer >= %d"):format(lo)
    end
    return n
  end
end

local function number_in(lo, hi, what)
  return function(v)
    local n = tonumber(v)
    if n == nil or n ~= n or n < lo or n > hi then return nil, what end
    return n
  end
end

local function non_empty(v)
  if v == "" then return nil, "must not be empty" end
  return v
end

local function throttle(v)
  local k, s = v:match("^(%d+)/(%d+%.?%d*)$")
  k, s = math.tointeger(tonumber(k)), tonumber(s)
  if not k or k < 1 or not s or s <= 0 then
    return nil, "must be K/SECONDS with K an integer >= 1 and SECONDS > 0 (e.g. 10/1)"
  end
  return { calls = k, seconds = s }
end

local rate = number_in(0, 1, "must be a number in 0..1")
local millis = number_in(0, 600000, "must be a number of milliseconds in 0..600000")

-- flag -> option name, parser (nil: a switch)
local FLAGS = {
  host = { "host", non_empty },
  port = { "port", integer_in(0, 65535) },
  ["api-id"] = { "api_id", non_empty },
  ["api-key"] = { "api_key", non_empty },
  seed = { "seed", integer_in(0, M.MAX_SEED) },
  ["latency-ms"] = { "latency_ms", millis },
  ["jitter-ms"] = { "jitter_ms", millis },
  ["fail-rate"] = { "fail_rate", rate },
  ["drop-rate"] = { "drop_rate", rate },
  throttle = { "throttle", throttle },
  quota = { "quota", integer_in(0) },
  ["bad-body-rate"] = { "bad_body_rate", rate },
  state = { "state", non_empty },
  ["tls-cert"] = { "tls_cert", non_empty },
  ["tls-key"] = { "tls_key", non_empty },
  admin = { "admin" },
  ["touch-rate"] = { "touch_rate", number_in(0, 10000, "must be a number of changes a second in 0..10000") },
  log = { "log" },
  help = { "help" },
}

--- Parses the command's arguments. Returns the options, or nil and a message
-- naming the flag and its rule.
function M.parse_args(argv)
  local opts = { host = "127.0.0.1", port = 0, seed = 100, latency_ms = 0, jitter_ms = 0,
                 fail_rate = 0, drop_rate = 0, bad_body_rate = 0 }
  local seen = {}
  local i = 1
  while argv[i] ~= nil do
    local a = argv[i]
    local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    local flag = name and FLAGS[name]
    if not flag then
      return nil, ("%s: unknown option (see --help)"):format(a)
    end
    if seen[name] then
      return nil, ("--%s: given twice"):format(name)
    end
    seen[name] = true
    local key, parse = flag[1], flag[2]
    if parse == nil then
      if inline then return nil, ("--%s: takes no value"):format(name) end
      opts[key] = true
    else
      local v = inline
      if v == nil then
        i = i + 1
        v = argv[i]
        if v == nil then return nil, ("--%s: needs a value"):format(name) end
      end
      local parsed, rule = parse(v)
      if parsed == nil then
        return nil, ("--%s %s: %s"):format(name, v, rule)
      end
      opts[key] = parsed
    end
    i = i + 1
  end
  if (opts.api_id == nil) ~= (opts.api_key == nil) then
    return nil, "--api-id and --api-key: give both or neither"
  end
  if (opts.tls_cert == nil) ~= (opts.tls_key == nil) then
    return nil, "--tls-cert and --tls-key: give both or neither"
  end
  return opts
end

-- ---- randomness ----------------------------------------------------------------

-- splitmix64: the faults are a pure function of --seed, and math.random's
-- shared state stays the app's.
local function prng(seed)
  local state = seed ~ 0x5DEECE66D
  return function()
    state = state + 0x9E3779B97F4A7C15
    local z = state
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return (z >> 11) * 2.0 ^ -53
  end
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  local out = {}
  for i = 1, #s - 2, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a << 16 | b << 8 | c
    for shift = 18, 0, -6 do
      local d = (n >> shift & 63) + 1
      out[#out + 1] = B64:sub(d, d)
    end
  end
  assert(#s % 3 == 0, "base64: whole groups only")
  return table.concat(out)
end

local function urandom(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(n)
  f:close()
  assert(bytes and #bytes == n, "short read from /dev/urandom")
  return bytes
end

--- Credentials for a run without --api-id/--api-key: a GUID for the id and a
-- key of 64 base64 characters, both from /dev/urandom.
function M.make_credentials()
  return guid.new(), base64(urandom(48))
end

-- ---- files ---------------------------------------------------------------------

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data, rerr = f:read("a")
  f:close()
  if not data then return nil, rerr end
  return data
end

local ENOENT = 2   -- errno, as os.remove reports it

--- Loads --state FILE into app. Only a FILE that does not exist means "no
-- state yet"; anything else that stops it loading (no permission, a folder,
-- not JSON, a seed past --seed's bound) is an error, and the file is left as
-- it is. A temporary file an interrupted save left beside it is removed
-- (FILE itself is whole: saves rename over it). Returns true, or nil and a
-- message; note(text) reports what was cleaned up.
function M.load_state(app, path, note)
  local tmp = path .. httpd.temp_suffix
  local removed, rerr, code = os.remove(tmp)
  if removed then
    note(("removed %s, left by an interrupted save"):format(tmp))
  elseif code ~= ENOENT then
    return nil, ("cannot remove %s, left by an interrupted save: %s"):format(tmp, rerr)
  end
  local data, msg, kind = httpd.read_file(path, M.MAX_STATE_BYTES)
  if not data then
    if kind == "missing" then return true end
    return nil, msg
  end
  local ok, t = pcall(cjson.decode, data)
  if ok and type(t) == "table" and type(t.seed) == "number" then
    local seed = math.tointeger(t.seed)
    if not seed or seed < 0 or seed > M.MAX_SEED then
      return nil, ("cannot load: its seed %s is not an integer in 0..%d (the bound of --seed)")
        :format(("%.17g"):format(t.seed), M.MAX_SEED)
    end
  end
  local lok, lerr = pcall(app.load, app, data)
  if not lok then return nil, "cannot load: " .. tostring(lerr) end
  return true
end

-- ---- answers -------------------------------------------------------------------

local function json_answer(status, t, headers)
  local h = { ["Content-Type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return { status = status, headers = h, body = cjson.encode(t) }
end

local function describe(status, description, headers)
  return json_answer(status, { Description = description }, headers)
end

local HTML_ERROR = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n" ..
  "<body><h1>Bad Gateway</h1><p>The upstream server sent an invalid response.</p></body></html>\n"

-- A 2xx JSON body made undecodable in one of three ways a real network
-- produces: cut short, an HTML error page from a proxy, or garbled JSON.
local function spoil(resp, random)
  local body = resp.body
  local kind = math.floor(random() * 3)
  if kind == 0 then
    -- A prefix that stops before the closing bracket never parses.
    local last = body:find("%s*$") - 1
    resp.body = body:sub(1, math.floor(random() * last))
  elseif kind == 1 then
    resp.body = HTML_ERROR
    for name in pairs(resp.headers) do
      if name:lower() == "content-type" then resp.headers[name] = nil end
    end
    resp.headers["Content-Type"] = "text/html; charset=utf-8"
  else
    resp.body = body:gsub("^(%s*[%[{])", "%1,", 1)
  end
end

local function is_json_document(resp)
  return type(resp.body) == "string" and resp.body:match("^%s*[%[{]") ~= nil
end

-- ---- the server ------------------------------------------------------------------

local Server = {}
Server.__index = Server

--- Wraps app with the faults and bookkeeping opts turns on (opts as
-- parse_args returns them). The server is not listening yet: see listen.
function M.new(opts, app)
  local self = setmetatable({
    opts = opts,
    app = app,
    random = prng(opts.seed or 100),
    calls = {},
    total = 0,
    quota_used = 0,
    window = {},              -- ring of the throttle window's call times
    window_next = 1,
  }, Server)
  -- The change ticker (unleashed.sandbox.ticker): on with --touch-rate, and
  -- ready for POST /_sandbox/touch with --admin.
  if (opts.touch_rate or 0) > 0 or opts.admin then
    self.ticker = require("unleashed.sandbox.ticker").new(app, { touch_rate = opts.touch_rate,
      seed = opts.seed, api_id = opts.api_id, api_key = opts.api_key, now = httpd.now() })
  end
  return self
end

function Server:admin(req)
  if req.path == "/_sandbox/stats" then
    if req.method ~= "GET" then
      return describe(405, "Use GET for /_sandbox/stats", { Allow = "GET" })
    end
    local calls = {}
    for k, v in pairs(self.calls) do calls[k] = v end
    return json_answer(200, { Total = self.total, Calls = calls })
  elseif req.path == "/_sandbox/reset" then
    if req.method ~= "POST" then
      return describe(405, "Use POST for /_sandbox/reset", { Allow = "POST" })
    end
    self.calls, self.total = {}, 0
    return json_answer(200, { Total = 0, Calls = {} })
  elseif req.path == "/_sandbox/touch" and self.ticker then
    return json_answer(self.ticker:admin(req, httpd.now()))
  end
  return describe(404, "No sandbox endpoint " .. req.path)
end

-- Sliding window: refuses when K calls already fell in the last SECONDS;
-- refused calls do not take a place in the window.
function Server:throttled(now)
  local t = self.opts.throttle
  local oldest = self.window[self.window_next]
  if oldest and now - oldest < t.seconds then
    return math.max(1, math.ceil(oldest + t.seconds - now))
  end
  self.window[self.window_next] = now
  self.window_next = self.window_next % t.calls + 1
  return nil
end

-- Written through FILE.tmp: written, flushed to disk, renamed over FILE,
-- the folder flushed; so FILE is always one whole state, old or new.
function Server:save_state()
  local path = self.opts.state
  if not path or not self.app.dump then return true end
  return httpd.write_file(path, self.app:dump())
end

function Server:faulty(req)
  local opts, random = self.opts, self.random
  if opts.quota and self.quota_used >= opts.quota then
    return describe(429, ("Monthly API call quota exceeded (%d calls); calls are refused until the " ..
                          "quota resets"):format(opts.quota))
  end
  self.quota_used = self.quota_used + 1
  if opts.throttle then
    local wait = self:throttled(httpd.now())
    if wait then
      return describe(429, ("Too many requests: more than %d calls in %g seconds; retry after %d " ..
                            "seconds"):format(opts.throttle.calls, opts.throttle.seconds, wait),
                      { ["Retry-After"] = tostring(wait) })
    end
  end
  if opts.fail_rate > 0 and random() < opts.fail_rate then
    local status = ({ 500, 502, 503 })[1 + math.floor(random() * 3)]
    return describe(status, ("The sandbox injected a %d fault (--fail-rate); the request was not " ..
                             "processed"):format(status))
  end

  local resp = self.app:handle(req)
  resp.headers = resp.headers or {}
  local status = resp.status or 200
  local ok = status >= 200 and status < 300
  if ok and req.method ~= "GET" and req.method ~= "HEAD" then
    local saved, err = self:save_state()
    if not saved then
      io.stderr:write(("unleashed-sandbox: cannot write --state %s: %s\n"):format(opts.state, err))
    end
  end
  if opts.drop_rate > 0 and random() < opts.drop_rate then
    resp.drop = true
  end
  if ok and opts.bad_body_rate > 0 and is_json_document(resp) and random() < opts.bad_body_rate then
    spoil(resp, random)
  end
  return resp
end

--- The handler for httpd's run: one request in, one response out.
function Server:handle(req)
  local opts = self.opts
  if self.ticker and self.ticker:catch_up(httpd.now()) > 0 then
    local saved, err = self:save_state()
    if not saved then
      io.stderr:write(("unleashed-sandbox: cannot write --state %s: %s\n"):format(opts.state, err))
    end
  end
  if opts.admin and req.path:sub(1, 10) == "/_sandbox/" then
    return self:admin(req)
  end
  local key = req.method .. " " .. req.path
  self.calls[key] = (self.calls[key] or 0) + 1
  self.total = self.total + 1
  local resp = self:faulty(req)
  local delay = opts.latency_ms
  if opts.jitter_ms > 0 then delay = delay + self.random() * opts.jitter_ms end
  if delay > 0 then resp.delay_ms = delay end
  return resp
end

--- Starts listening; returns the base URL.
function Server:listen(tls_cert_pem, tls_key_pem)
  local opts = self.opts
  self.srv = httpd.new{ host = opts.host, port = opts.port, tls_cert = tls_cert_pem, tls_key = tls_key_pem }
  local host = opts.host:find(":", 1, true) and "[" .. opts.host .. "]" or opts.host
  self.base_url = ("%s://%s:%d"):format(tls_cert_pem and "https" or "http", host, self.srv:port())
  return self.base_url
end

--- At header time, for a request with a body: nil lets the body be read;
-- an answer is sent without reading it. Only a refused id or signature is
-- answered here, and through the same steps as any call (counted, the
-- quota, faults, then the API's own 403), so the answer does not depend on
-- when it was made; the body of a refused call is never held in memory.
function Server:check(req)
  if self.opts.admin and req.path:sub(1, 10) == "/_sandbox/" then return nil end
  if self.app.authenticate == nil or self.app:authenticate(req) == nil then return nil end
  return self:handle(req)
end

--- Serves until SIGINT, SIGTERM or stop; returns what ended it.
function Server:run()
  local log = self.opts.log and io.stderr
  local function logged(fn)
    if not log then return fn end
    return function(req)
      local t0 = httpd.now()
      local resp = fn(req)
      if resp ~= nil then
        log:write(("%s %s%s%s %d%s %.1fms\n"):format(req.method, req.path, req.query ~= "" and "?" or "",
          req.query, resp.status or 200, resp.drop and " dropped" or "", (httpd.now() - t0) * 1000))
      end
      return resp
    end
  end
  return self.srv:run(logged(function(req) return self:handle(req) end),
                      logged(function(req) return self:check(req) end))
end

function Server:close()
  if self.srv then self.srv:close() end
end

-- ---- the command ---------------------------------------------------------------

--- Runs the command: returns the exit status (0 after a signal, 1 when the
-- server cannot start, 2 for bad flags).
function M.main(argv, out, err)
  out, err = out or io.stdout, err or io.stderr
  local opts, msg = M.parse_args(argv)
  if not opts then
    err:write("unleashed-sandbox: ", msg, "\n")
    return 2
  end
  if opts.help then
    out:write(M.usage)
    return 0
  end
  local pems = {}
  for _, flag in ipairs{ "tls_cert", "tls_key" } do
    if opts[flag] then
      local data, rerr = read_file(opts[flag])
      if not data then
        err:write(("unleashed-sandbox: --%s: cannot read %s\n"):format(flag:gsub("_", "-"), rerr))
        return 2
      end
      pems[flag] = data
    end
  end
  local made_up = opts.api_id == nil
  if made_up then opts.api_id, opts.api_key = M.make_credentials() end

  local ok, app = pcall(function()
    local sandbox = require "unleashed.sandbox"
    return sandbox.new{ seed = opts.seed, credentials = { [opts.api_id] = opts.api_key } }
  end)
  if not ok then
    err:write("unleashed-sandbox: cannot create the API: ", tostring(app), "\n")
    return 1
  end
  if opts.state then
    local lok, lerr = M.load_state(app, opts.state, function(text)
      err:write(("unleashed-sandbox: --state %s: %s\n"):format(opts.state, text))
    end)
    if not lok then
      err:write(("unleashed-sandbox: --state %s: %s; not starting, the file is left as it is\n")
        :format(opts.state, lerr))
      return 1
    end
  end

  local server = M.new(opts, app)
  local lok, url = pcall(server.listen, server, pems.tls_cert, pems.tls_key)
  if not lok then
    err:write("unleashed-sandbox: ", tostring(url), "\n")
    return 1
  end
  out:write("listening on ", url, "\n")
  if made_up then
    out:write(("credentials UNLEASHED_API_ID=%s UNLEASHED_API_KEY=%s\n"):format(opts.api_id, opts.api_key))
  end
  out:flush()

  server:run()
  local status = 0
  local saved, serr = server:save_state()
  if not saved then
    err:write(("unleashed-sandbox: cannot write --state %s: %s\n"):format(opts.state, serr))
    status = 1
  end
  server:close()
  return status
end

return M
