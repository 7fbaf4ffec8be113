--- lua-unleashed: the Unleashed inventory API for Lua 5.4.
--
--   local unleashed = require "unleashed"
--   local client = unleashed.new{ api_id = ..., api_key = ... }
--   for po in client.purchase_orders:each{ orderStatus = "Placed" } do ... end
--
-- The C core (unleashed.core) signs, encodes, sends, retries and pages; this
-- layer checks input, shapes answers into tables with methods and turns
-- failures into unleashed.Error values.
local core = require "unleashed.core"
local Error = require "unleashed.error"
local json = require "unleashed.json"
local guid = require "unleashed.guid"
local decimal = require "unleashed.decimal"
local validate = require "unleashed.validate"
local client = require "unleashed.client"

local M = {}

M.version = core.version
M.Error = Error
--- JSON null: a field set to unleashed.null is sent as an explicit null.
M.null = json.null

--- base64(HMAC-SHA256(key, message)): the API's request signature.
M.sign = core.sign

--- A new random (version 4) GUID, for orders and lines the script creates.
M.guid = guid.new

--- Rounds half away from zero to `places` decimals, on the number's decimal
-- value (2.675 -> 2.68), as the server rounds (2dp)/(4dp) fields.
function M.round(x, places)
  if type(x) ~= "number" or x ~= x or x == math.huge or x == -math.huge then
    Error.raise_validation(nil, { { field = "x", message = "must be a finite number" } })
  end
  if not math.tointeger(places) or places < 0 or places > 12 then
    Error.raise_validation(nil, { { field = "places", message = "must be an integer from 0 to 12" } })
  end
  return (decimal.round_number(x, places))
end

--- Marks a table as a JSON array, so that it is sent as [] even when empty.
M.array = json.array

--- unleashed.json.encode(value) -> JSON text, as the library sends bodies:
-- keys sorted, numbers without float noise, unleashed.null as null, and the
-- API's collections (PurchaseOrderLines, SalesOrders, ...) and
-- unleashed.array tables as [] even when empty, so an order read from the
-- server encodes back to the same shapes. A value JSON cannot hold raises a
-- validation error naming its path.
M.json = {}
function M.json.encode(value)
  local text, problem = json.encode(value)
  if not text then
    Error.raise_validation("cannot encode as JSON",
      { { field = problem.field or "value", message = problem.message } })
  end
  return text
end

--- unleashed.new(opts) -> client. See the README for the options.
function M.new(opts)
  local checked, problems = validate.options(opts)
  if #problems > 0 then Error.raise_validation("invalid client options", problems) end
  return client.new(checked)
end

local ENV = {
  api_id = "UNLEASHED_API_ID", api_key = "UNLEASHED_API_KEY",
  base_url = "UNLEASHED_BASE_URL", client_type = "UNLEASHED_CLIENT_TYPE",
  default_purchase_tax = "UNLEASHED_DEFAULT_PURCHASE_TAX",
}

--- unleashed.from_env([opts]): credentials from UNLEASHED_API_ID,
-- UNLEASHED_API_KEY, UNLEASHED_BASE_URL, UNLEASHED_CLIENT_TYPE and
-- UNLEASHED_DEFAULT_PURCHASE_TAX; opts adds or overrides options.
function M.from_env(opts, getenv)
  getenv = getenv or os.getenv
  local merged = {}
  local problems = {}
  if opts ~= nil and type(opts) ~= "table" then
    Error.raise_validation("invalid client options", { { field = "options", message = "must be a table" } })
  end
  for k, var in pairs(ENV) do
    local v = getenv(var)
    if v ~= nil and v ~= "" then merged[k] = v end
  end
  merged.default_purchase_tax = require("unleashed.cli.profile").tax_option(merged.default_purchase_tax)
  for k, v in pairs(opts or {}) do merged[k] = v end
  for _, k in ipairs{ "api_id", "api_key" } do
    if merged[k] == nil then
      problems[#problems + 1] = { field = ENV[k],
                                  message = "is not set (the environment variable is required)" }
    end
  end
  -- Missing credentials are an auth failure, as the command reports them.
  if #problems > 0 then error(Error.new("auth", "missing credentials", { details = problems }), 0) end
  return M.new(merged)
end

--- unleashed.from_profile([name], [opts]): credentials from section [name]
-- (default: UNLEASHED_PROFILE, else "default") of the credentials file the
-- `unleashed` command reads ($XDG_CONFIG_HOME/unleashed/credentials, by
-- default ~/.config/unleashed/credentials), refused unless only its owner
-- can read it. UNLEASHED_BASE_URL, UNLEASHED_CLIENT_TYPE and
-- UNLEASHED_DEFAULT_PURCHASE_TAX fill what the section leaves out; opts adds
-- or overrides options.
function M.from_profile(name, opts, getenv)
  getenv = getenv or os.getenv
  if name ~= nil and (type(name) ~= "string" or name == "") then
    Error.raise_validation("invalid profile", { { field = "name", message = "must be a non-empty string" } })
  end
  if opts ~= nil and type(opts) ~= "table" then
    Error.raise_validation("invalid client options", { { field = "options", message = "must be a table" } })
  end
  local profile = require "unleashed.cli.profile"
  local env_name = getenv("UNLEASHED_PROFILE")
  if env_name == "" then env_name = nil end
  local creds = profile.load(name or env_name or "default", getenv, client.DEFAULTS.client_type)
  for k, v in pairs(opts or {}) do creds[k] = v end
  return M.new(creds)
end

return M
