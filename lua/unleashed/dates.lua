-- Dates a script hands to the library: ISO 8601 text (checked, sent as it
-- is) or os.time() numbers (seconds since 1970, turned into UTC ISO text).
local M = {}

local DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- True for "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff]][Z]" with fields in range.
function M.valid_iso(s)
  if type(s) ~= "string" then return false end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return false end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > DAYS[mo] then return false end
  if mo == 2 and d == 29 and not (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then return false end
  if rest == "" then return true end
  local h, mi, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
  if not h or tonumber(h) > 23 or tonumber(mi) > 59 then return false end
  if tail == "" or tail == "Z" then return true end
  local sec, frac = tail:match("^:(%d%d)(.*)$")
  if not sec or tonumber(sec) > 59 then return false end
  return frac == "" or frac == "Z" or frac:find("^%.%d+Z?$") ~= nil
end

-- os.time() number -> "YYYY-MM-DDTHH:MM:SS[.mmm]" in UTC; date_only gives
-- "YYYY-MM-DD" when the time of day is midnight.
function M.from_time(t, date_only)
  local whole = math.floor(t)
  local ms = math.floor((t - whole) * 1000 + 0.5)
  if ms >= 1000 then whole, ms = whole + 1, 0 end
  whole = math.tointeger(whole)
  if date_only and ms == 0 and whole % 86400 == 0 then
    return os.date("!%Y-%m-%d", whole)
  end
  local s = os.date("!%Y-%m-%dT%H:%M:%S", whole)
  if ms > 0 then s = s .. string.format(".%03d", ms) end
  return s
end

-- Checks and converts a date value. Returns the text, or nil and the rule broken.
function M.coerce(v, date_only)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "must be a finite number" end
    if v < 0 or v >= 253402300800 then return nil, "must be a time between 1970 and 9999" end
    return M.from_time(v, date_only)
  elseif type(v) == "string" then
    if not M.valid_iso(v) then
      return nil, "must be an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC) or an os.time() number"
    end
    return v
  end
  return nil, "must be an ISO 8601 date string or an os.time() number, not a " .. type(v)
end

return M
