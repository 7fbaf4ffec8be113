-- GUIDs the client chooses (orders and lines), so that creating one is safe
-- to retry. Random version 4 from the kernel's generator: no Lua RNG state is
-- touched or shared between clients.
local M = {}

local PATTERN = "^" .. string.rep("%x", 8) .. "%-" .. string.rep("%x", 4) .. "%-" .. string.rep("%x", 4)
  .. "%-" .. string.rep("%x", 4) .. "%-" .. string.rep("%x", 12) .. "$"

function M.valid(s)
  return type(s) == "string" and s:find(PATTERN) ~= nil
end

function M.new()
  local f, err = io.open("/dev/urandom", "rb")
  if not f then error("unleashed.guid: cannot open /dev/urandom: " .. tostring(err), 2) end
  local bytes = f:read(16)
  f:close()
  if not bytes or #bytes ~= 16 then error("unleashed.guid: short read from /dev/urandom", 2) end
  local b = { bytes:byte(1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40   -- version 4
  b[9] = (b[9] & 0x3f) | 0x80   -- RFC 4122 variant
  return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
    table.unpack(b))
end

return M
