-- Credentials for the command and for unleashed.from_profile: the
-- environment, or one section of the profile file
-- ($XDG_CONFIG_HOME/unleashed/credentials, by default
-- ~/.config/unleashed/credentials). The file holds API keys, so it is refused
-- when anyone but its owner may read or write it. No message here ever
-- carries a key. Every failure is an unleashed.Error of kind "auth".
local Error = require "unleashed.error"

local M = {}

M.KEYS = { api_id = true, api_key = true, base_url = true, client_type = true,
           default_purchase_tax = true }
local KEY_LIST = "api_id, api_key, base_url, client_type, default_purchase_tax"

local function fail(message)
  error(Error.new("auth", message, { details = { { message = message } } }), 0)
end

function M.path(getenv)
  getenv = getenv or os.getenv
  local xdg = getenv("XDG_CONFIG_HOME")
  if xdg and xdg ~= "" then return xdg .. "/unleashed/credentials" end
  local home = getenv("HOME")
  if not home or home == "" then return nil end
  return home .. "/.config/unleashed/credentials"
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The file's permission bits as a number, from lfs when it is installed,
-- otherwise from stat(1).
function M.mode(path)
  local ok, lfs = pcall(require, "lfs")
  if ok and type(lfs) == "table" and lfs.attributes then
    local perms = lfs.attributes(path, "permissions")
    if perms then
      local mode = 0
      for i = 1, 9 do
        mode = mode * 2 + (perms:sub(i, i) ~= "-" and 1 or 0)
      end
      return mode
    end
    return nil
  end
  local p = io.popen("stat -L -c %a " .. shell_quote(path) .. " 2>/dev/null")
  if not p then return nil end
  local out = p:read("a")
  p:close()
  local octal = out:match("^(%d+)")
  return octal and tonumber(octal, 8) or nil
end

-- Why the mode is unsafe, or nil when only the owner has access.
function M.unsafe(mode)
  local parts = {}
  for _, who in ipairs { { "its group", 3 }, { "others", 0 } } do
    local bits = (mode >> who[2]) & 7
    if bits ~= 0 then
      local can = {}
      if bits & 4 ~= 0 then can[#can + 1] = "read" end
      if bits & 2 ~= 0 then can[#can + 1] = "write" end
      if bits & 1 ~= 0 then can[#can + 1] = "execute" end
      parts[#parts + 1] = who[1] .. " can " .. table.concat(can, " and ") .. " it"
    end
  end
  if #parts == 0 then return nil end
  return table.concat(parts, "; ")
end

-- The value after "=": a double-quoted value is taken as it is; otherwise a
-- "#" or ";" after a space (or at the start) begins a comment.
local function value_of(raw, path, n)
  if raw:sub(1, 1) == '"' then
    local v, rest = raw:match('^"([^"]*)"(.*)$')
    if not v or not (rest:match("^%s*$") or rest:match("^%s+[#;]")) then
      fail(("%s line %d: a quoted value must end with a closing \" (and then only a comment)")
        :format(path, n))
    end
    return v
  end
  if raw:match("^[#;]") then return "" end
  local cut = raw:find("%s[#;]")
  if cut then raw = raw:sub(1, cut - 1) end
  return (raw:gsub("%s+$", ""))
end

-- Parses the INI-like text: [section], key = value, # or ; comments (whole
-- lines, or after a value). A section given twice or an unknown key is an
-- error naming the line.
function M.parse(text, path)
  local sections, current, where = {}, nil, {}
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    local body = line:match("^%s*(.-)%s*$")
    if body == "" or body:match("^[#;]") then
      goto continue
    end
    if body:match("^%[") then
      local name = body:match("^%[%s*([^%]]-)%s*%]%s*$") or body:match("^%[%s*([^%]]-)%s*%]%s+[#;]")
      if not name or name == "" then
        fail(("%s line %d: a section header must be [NAME]"):format(path, n))
      end
      if sections[name] then
        fail(("%s line %d: section [%s] is given twice (first on line %d)")
          :format(path, n, name, where[name]))
      end
      current = {}
      sections[name], where[name] = current, n
    else
      local key, raw = body:match("^([^=%s]+)%s*=%s*(.-)$")
      if not key then
        fail(("%s line %d: expected key = value"):format(path, n))
      end
      if not M.KEYS[key] then
        local hint = ""
        local guess = key:lower():gsub("%-", "_")
        if M.KEYS[guess] then hint = (", did you mean %s?"):format(guess) end
        fail(("%s line %d: unknown key %q (valid: %s%s)"):format(path, n, key, KEY_LIST, hint))
      end
      if not current then
        fail(("%s line %d: key %q comes before any [section]"):format(path, n, key))
      end
      if current[key] ~= nil then
        fail(("%s line %d: key %q is given twice in this section"):format(path, n, key))
      end
      current[key] = value_of(raw, path, n)
    end
    ::continue::
  end
  return sections
end

-- Reads and checks the profile file. Returns the sections, or nil when the
-- file does not exist.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then
    local probe = io.open(path .. "/.", "rb")
    if probe then
      probe:close()
      fail(("the profile file %s is a directory: the credentials go in a file of that name"):format(path))
    end
    return nil
  end
  local text, rerr = f:read("a")
  if text == nil then
    f:close()
    if tostring(rerr):find("directory", 1, true) then
      fail(("the profile file %s is a directory: the credentials go in a file of that name"):format(path))
    end
    fail(("cannot read the profile file %s: %s"):format(path, tostring(rerr)))
  end
  local mode = M.mode(path)
  if not mode then
    f:close()
    fail(("cannot read the permissions of %s"):format(path))
  end
  local why = M.unsafe(mode)
  if why then
    f:close()
    fail(("refusing the profile file %s: its mode is %04o, so %s, and it holds API keys; "
      .. "make it private with: chmod 600 %s"):format(path, mode, why, path))
  end
  f:close()
  return M.parse(text, path)
end

local function env_of(getenv)
  return function(name)
    local v = getenv(name)
    if v == "" then return nil end
    return v
  end
end

-- default_purchase_tax written as text (a profile, the environment): a
-- number is a rate ("0.15"), anything else a tax code ("G.S.T.").
function M.tax_option(text)
  if text == nil then return nil end
  if text:find("^%s*%d*%.?%d+%s*$") then return tonumber(text) end
  return text
end

local function options(creds, source, env, default_client_type)
  for _, k in ipairs { "api_id", "api_key" } do
    if not creds[k] or creds[k] == "" then
      fail(("%s has no %s"):format(source, k))
    end
  end
  return {
    api_id = creds.api_id,
    api_key = creds.api_key,
    base_url = creds.base_url or env("UNLEASHED_BASE_URL"),
    client_type = creds.client_type or env("UNLEASHED_CLIENT_TYPE") or default_client_type,
    default_purchase_tax = M.tax_option(creds.default_purchase_tax or env("UNLEASHED_DEFAULT_PURCHASE_TAX")),
  }, source
end

local function section(path, name)
  if not path then fail("no profile file: neither XDG_CONFIG_HOME nor HOME is set") end
  local sections = M.read(path)
  if not sections then
    fail(("profile %q: the profile file %s does not exist"):format(name, path))
  end
  local s = sections[name]
  if not s then
    local names = {}
    for k in pairs(sections) do names[#names + 1] = k end
    table.sort(names)
    fail(("profile %q: no [%s] section in %s (sections: %s)")
      :format(name, name, path, #names > 0 and table.concat(names, ", ") or "none"))
  end
  return s, ("profile %q in %s"):format(name, path)
end

-- The options of section [name] (unleashed.from_profile).
function M.load(name, getenv, default_client_type)
  getenv = getenv or os.getenv
  local env = env_of(getenv)
  local creds, source = section(M.path(getenv), name)
  return options(creds, source, env, default_client_type)
end

-- Resolves the options for unleashed.new. Order: --profile NAME (or
-- UNLEASHED_PROFILE) reads that section; otherwise UNLEASHED_API_ID and
-- UNLEASHED_API_KEY; otherwise the file's [default] section. UNLEASHED_BASE_URL,
-- UNLEASHED_CLIENT_TYPE and UNLEASHED_DEFAULT_PURCHASE_TAX fill what a
-- profile leaves out.
function M.resolve(profile, getenv)
  getenv = getenv or os.getenv
  local env = env_of(getenv)
  local path = M.path(getenv)
  profile = profile or env("UNLEASHED_PROFILE")
  local default_type = "lua-unleashed/cli"
  if profile then
    local creds, source = section(path, profile)
    return options(creds, source, env, default_type)
  end
  local id, key = env("UNLEASHED_API_ID"), env("UNLEASHED_API_KEY")
  if id or key then
    local function missing(unset, set)
      fail(("%s is not set (%s is): set both, or neither to use a profile"):format(unset, set))
    end
    if not key then missing("UNLEASHED_API_KEY", "UNLEASHED_API_ID") end
    if not id then missing("UNLEASHED_API_ID", "UNLEASHED_API_KEY") end
    return options({ api_id = id, api_key = key }, "the environment", env, default_type)
  end
  local sections = path and M.read(path)
  if sections and sections.default then
    return options(sections.default, ("profile \"default\" in %s"):format(path), env, default_type)
  end
  fail(("no credentials: set UNLEASHED_API_ID and UNLEASHED_API_KEY, or give --profile NAME "
    .. "for a section of %s"):format(path or "~/.config/unleashed/credentials"))
end

return M
