-- The command's flags: parsing (`--name value`, `--name=value`, repeated
-- flags, `-h`, `--` to end them) and the checks of their values, each
-- failure a usage error (exit 2) naming the flag and the rule.
local dates = require "unleashed.dates"
local filters = require "unleashed.filters"

local M = {}

-- A usage error: the command prints it with a pointer to the topic's help.
function M.usage_error(message, topic)
  error({ kind = "usage", message = message, topic = topic, cli = true }, 0)
end
local usage_error = M.usage_error

-- Flags every command that talks to the API takes, also before the command.
M.COMMON = {
  profile = "value", concurrency = "value", retries = "value", timeout = "value", verbose = "flag",
  help = "flag",
}

-- Parses args for one command. spec maps a flag's name to "value" (one
-- value, the last one given wins), "list" (repeatable: every value, in
-- order) or "flag" (no value). COMMON is added unless common == false.
-- Returns the options and the positional arguments.
function M.parse(args, spec, topic, common)
  local all = {}
  if common ~= false then for k, v in pairs(M.COMMON) do all[k] = v end end
  for k, v in pairs(spec) do all[k] = v end
  local opts, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do pos[#pos + 1] = args[j] end
      break
    elseif a == "-h" then
      opts.help = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local kind = all[name]
      if not kind then usage_error(("unknown flag --%s"):format(name), topic) end
      if kind == "flag" then
        if value then usage_error(("--%s takes no value"):format(name), topic) end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then usage_error(("--%s needs a value"):format(name), topic) end
        end
        if kind == "list" then
          opts[name] = opts[name] or {}
          table.insert(opts[name], value)
        else
          opts[name] = value
        end
      end
    elseif a:sub(1, 1) == "-" and #a > 1 and not a:match("^%-%d") then
      usage_error(("unknown flag %s"):format(a), topic)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

-- ---- values ----------------------------------------------------------------------

function M.integer(value, flag, lo, hi, topic)
  local n = value:match("^%d+$") and math.tointeger(tonumber(value))
  if not n or n < lo or n > hi then
    usage_error(("--%s: expected an integer from %d to %d, got %q"):format(flag, lo, hi, value), topic)
  end
  return n
end

function M.number(value, flag, lo, hi, topic, what)
  local n = (value:match("^%d+%.?%d*$") or value:match("^%.%d+$")) and tonumber(value)
  if not n or n < lo or n > hi then
    usage_error(("--%s: expected %s, got %q"):format(flag, what or ("a number from " .. lo .. " to " .. hi),
      value), topic)
  end
  return n
end

-- A date as the filters and bodies take it: YYYY-MM-DD, or with a time when
-- with_time. Every value that is not one, malformed or not on the calendar
-- (2026/01/01, 2026-02-30), gets the same message.
function M.date(value, flag, topic, with_time)
  local shape = value:match("^%d%d%d%d%-%d%d%-%d%d$")
    or (with_time and value:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ?$"))
  if shape and dates.valid_iso(value) then return value end
  usage_error(("--%s: expected a date YYYY-MM-DD%s that is on the calendar, got %q")
    :format(flag, with_time and " (or YYYY-MM-DDTHH:MM:SS, UTC)" or "", value), topic)
end

-- One of `allowed`, in any case; returns it as `allowed` spells it.
function M.choice(value, allowed, flag, topic)
  for _, a in ipairs(allowed) do
    if a:lower() == value:lower() then return a end
  end
  usage_error(("--%s: expected one of %s, got %q"):format(flag, table.concat(allowed, ", "), value), topic)
end

-- --status values: each may hold several, comma-separated; returns them
-- spelled as the API does, each once, joined with ",".
function M.statuses(values, topic, allowed)
  allowed = allowed or filters.STATUSES
  local out, seen = {}, {}
  for _, v in ipairs(values) do
    for s in (v .. ","):gmatch("([^,]*),") do
      s = s:match("^%s*(.-)%s*$")
      if s == "" then usage_error(("--status: empty status in %q"):format(v), topic) end
      local name = M.choice(s, allowed, "status", topic)
      if not seen[name] then
        seen[name] = true
        out[#out + 1] = name
      end
    end
  end
  return table.concat(out, ",")
end

-- The client options the common flags set: --concurrency, --retries,
-- --timeout (seconds per attempt).
function M.client_options(opts, topic)
  local o = {}
  if opts.concurrency then o.concurrency = M.integer(opts.concurrency, "concurrency", 1, 64, topic) end
  if opts.retries then o.max_retries = M.integer(opts.retries, "retries", 0, 100, topic) end
  if opts.timeout then
    o.timeout = M.number(opts.timeout, "timeout", 0.001, 86400, topic, "seconds from 0.001 to 86400")
  end
  return o
end

return M
