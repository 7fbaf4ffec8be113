-- unleashed.Error: the one error type the library raises for failures a
-- script may want to handle. Policy (which status means which kind) lives
-- here, in Lua, so it is easy to read and to change.
local core = require "unleashed.core"
local json = require "unleashed.json"

local Error = {}
Error.__index = Error
Error.__name = "unleashed.Error"

-- Every kind a script can test with `err.kind == ...` or Error.is(err, kind).
Error.kinds = {
  validation = true, auth = true, not_found = true, conflict = true,
  rate_limited = true, quota = true, server = true, network = true,
  timeout = true, tls = true, protocol = true, closed = true,
}

local MAX_BODY_SNIPPET = 200

-- Builds an error. `fields.details` is a list of { field = ..., message = ... }.
function Error.new(kind, message, fields)
  assert(Error.kinds[kind], "unknown error kind")
  local e = setmetatable({}, Error)
  if fields then
    for k, v in pairs(fields) do e[k] = v end
  end
  e.kind = kind
  e.message = message or (e.details and e.details[1] and e.details[1].message) or kind
  e.details = e.details or {}
  return e
end

function Error.is(e, kind)
  return getmetatable(e) == Error and (kind == nil or e.kind == kind)
end

-- A validation error for input refused before any request is sent.
function Error.validation(what, details, method, path)
  local first = details[1]
  return Error.new("validation", what or (first and first.message), {
    details = details, method = method, path = path,
  })
end

-- Raises a validation error for input; level points at the caller's call.
function Error.raise_validation(what, details, method, path)
  error(Error.validation(what, details, method, path), 0)
end

local function detail_text(d)
  if d.field and d.field ~= "" then return d.field .. ": " .. d.message end
  return d.message
end

local function present(s)
  return type(s) == "string" and s ~= ""
end

-- The call is named only when both its method and its path are known: a
-- bare "GET" (or a path without its method) tells the reader nothing.
function Error:__tostring()
  local parts = { "unleashed: ", self.kind:gsub("_", " "), " error" }
  if self.status then parts[#parts + 1] = " (" .. tostring(self.status) .. ")" end
  if present(self.method) and present(self.path) then
    parts[#parts + 1] = " " .. self.method .. " " .. self.path
  end
  local texts = {}
  for i, d in ipairs(self.details) do texts[i] = detail_text(d) end
  -- The details carry every description; the message is their summary.
  local body = #texts > 0 and table.concat(texts, "; ") or self.message
  parts[#parts + 1] = ": " .. tostring(body)
  if self.attempts and self.attempts > 1 then
    parts[#parts + 1] = " (after " .. self.attempts .. " attempts)"
  end
  return table.concat(parts)
end

-- ---- Reading the server's answer ---------------------------------------

-- Printable, short, single-line excerpt of a body that is not JSON.
local function snippet(body)
  local s = body:gsub("[%c]+", " "):gsub("^%s+", ""):gsub("%s+$", "")
  if #s > MAX_BODY_SNIPPET then s = s:sub(1, MAX_BODY_SNIPPET) .. "..." end
  return s
end

-- The server counts a collection's items from 0 ("PurchaseOrderLines[0]");
-- the library, like Lua, from 1. Every index that follows a name, in a field
-- or in a description, is shifted so that one convention holds everywhere.
local function one_based(text)
  return (text:gsub("([%w_])%[(%d+)%]", function(name, n)
    return name .. "[" .. (tonumber(n) + 1) .. "]"
  end))
end


local function text_of(v)
  if type(v) == "string" and v ~= "" then return v end
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" and v == v and v == math.floor(v) then return string.format("%d", v) end
  return nil
end

-- Every Field/Description the server sent, from either shape the API uses:
-- {"Items":[{"Field":..,"Description":..}]} or {"Description":..}, with
-- lower-case names too ("description", "field", "items") and "Message" where a
-- proxy answered; an "ErrorCode" rides along as the detail's `code`.
function Error.server_details(body)
  local details = {}
  if type(body) ~= "string" or body == "" then return details end
  -- The response decoder, with its limits: an error body is an answer too.
  local doc = json.decode(body)
  if doc == nil then
    local s = snippet(body)
    if s ~= "" then details[1] = { message = s } end
    return details
  end
  local function add(t)
    if type(t) ~= "table" then
      if type(t) == "string" and t ~= "" then details[#details + 1] = { message = one_based(t) } end
      return
    end
    local msg = t.Description or t.description or t.Message or t.message
    local field = t.Field or t.field
    local code = text_of(t.ErrorCode or t.errorCode)
    if type(msg) ~= "string" or msg == "" then
      if not code then return end
      msg = "error code " .. code
    end
    details[#details + 1] = {
      field = type(field) == "string" and field ~= "" and one_based(field) or nil,
      message = one_based(msg),
      code = code,
    }
  end
  if type(doc) == "table" then
    local items = doc.Items or doc.items
    if type(items) == "table" then
      for _, it in ipairs(items) do add(it) end
    end
    if #details == 0 then add(doc) end
    if #details == 0 and #doc > 0 then
      for _, it in ipairs(doc) do add(it) end
    end
  else
    add(doc)
  end
  return details
end

local function any_detail_matches(details, pattern)
  for _, d in ipairs(details) do
    if d.message:lower():find(pattern) then return true end
  end
  return false
end

-- The monthly quota: a 429 whose raw body says "quota" anywhere, in any case.
-- The same rule as the C core's, so that the kind and the decision not to
-- retry always agree. Without the body, the descriptions are read instead.
local function mentions_quota(details, body)
  if type(body) == "string" then return body:lower():find("quota", 1, true) ~= nil end
  return any_detail_matches(details, "quota")
end

-- The kind for an HTTP status that is not 2xx. body: the raw response body.
function Error.kind_for_status(status, details, ctx, body)
  if status == 400 or status == 422 then
    if ctx and ctx.create and any_detail_matches(details, "already exists") then return "conflict" end
    return "validation"
  elseif status == 401 or status == 403 then return "auth"
  elseif status == 404 then return "not_found"
  elseif status == 409 then return "conflict"
  elseif status == 408 then return "timeout"
  elseif status == 429 then
    return mentions_quota(details, body) and "quota" or "rate_limited"
  elseif status >= 500 and status <= 599 then return "server"
  elseif status >= 400 and status <= 499 then return "validation"
  end
  return "protocol"
end

local REASONS = {
  [400] = "bad request", [401] = "unauthorized", [403] = "forbidden", [404] = "not found",
  [408] = "request timeout", [409] = "conflict", [429] = "too many requests",
  [500] = "internal server error", [502] = "bad gateway", [503] = "service unavailable",
  [504] = "gateway timeout",
}

-- The error for a core response table that is not a success (res.error set,
-- no status, or a status outside 2xx). Returns nil for a 2xx.
-- ctx: { create = true } for a create POST.
function Error.from_response(res, method, path, ctx)
  local fields = { method = method, path = path, attempts = res.attempts, status = res.status }
  if res.error then
    local kind = res.error.kind
    if not Error.kinds[kind] then kind = "network" end
    local msg = res.error.message or kind
    -- The core's message ends with "(METHOD PATH)": tostring prints them
    -- already, so they are said once.
    if method and path then
      local tail = " (" .. method .. " " .. path .. ")"
      if #msg > #tail and msg:sub(-#tail) == tail then msg = msg:sub(1, -#tail - 1) end
    end
    fields.details = { { message = msg } }
    return Error.new(kind, msg, fields)
  end
  local status = res.status
  if status == nil then
    fields.details = { { message = "no response" } }
    return Error.new("network", "no response", fields)
  end
  if status >= 200 and status <= 299 then return nil end
  local details = Error.server_details(res.body)
  local kind = Error.kind_for_status(status, details, ctx, res.body)
  fields.details = details
  if kind == "rate_limited" then
    -- The wait the server asked for: the core answers at once, unretried,
    -- when it exceeds retry_cap, and the script decides.
    local ra = type(res.headers) == "table" and res.headers["retry-after"]
    if type(ra) == "string" then fields.retry_after = core.parse_retry_after(ra) end
  end
  local msg = details[1] and details[1].message or ("HTTP " .. status .. (REASONS[status] and
    (" " .. REASONS[status]) or ""))
  if #details == 0 then fields.details = { { message = msg } } end
  return Error.new(kind, msg, fields)
end

-- A 2xx whose body is not what the call expects.
function Error.protocol(message, method, path, res)
  return Error.new("protocol", message, {
    method = method, path = path, status = res and res.status, attempts = res and res.attempts,
    details = { { message = message } },
  })
end

-- Ambiguous failures: the request may or may not have taken effect.
function Error.is_ambiguous(e)
  return Error.is(e) and (e.kind == "network" or e.kind == "timeout" or e.kind == "server"
    or e.kind == "protocol")
end

return Error
