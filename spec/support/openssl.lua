-- The independent HMAC the signing specs compare against: the openssl
-- command line, `openssl dgst -sha256 -mac HMAC -binary | base64`.
local files = require "support.files"

local M = {}

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- base64(HMAC-SHA256(key, message)) as computed by openssl.
function M.hmac(message, key)
  local tmp = os.tmpname()
  files.write_file(tmp, message)
  local p = assert(io.popen(("openssl dgst -sha256 -mac HMAC -macopt key:%s -binary < %s | base64")
    :format(quote(key), quote(tmp))))
  local out = p:read("a")
  p:close()
  os.remove(tmp)
  return (out:gsub("%s+$", ""))
end

return M
