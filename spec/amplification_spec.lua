-- Memory amplification: a small gzip body that expands to tens of megabytes
-- of {"Items":[{},{},...]} is refused by the decoder's limits before any
-- table is built, and the client's memory stays bounded by the body itself
-- (the transport's max_body), not by the tables the body would have made.
local stub = require "support.stub_control"

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

-- A child lua5.4 that makes one request with the library and prints how it
-- ended and its peak RSS in kB.
local CHILD = [[
local unleashed = require "unleashed"
local c = unleashed.new{ api_id = "id", api_key = "key", base_url = arg[1], max_retries = 0, timeout = 30 }
local ok, err = pcall(c.request, c, "GET", "/Suppliers")
local f = io.open("/proc/self/status")
local hwm = f:read("a"):match("VmHWM:%s*(%d+)")
f:close()
io.write(ok and "answered" or (err.kind .. "|" .. err.message), "|", hwm)
]]

describe("a gzip body that expands to millions of empty objects", function()
  it("is refused with kind protocol, and the client's peak RSS stays near the body's size", function()
    local gz, child, s = os.tmpname(), os.tmpname(), nil
    -- one finally: busted keeps only the last one a test registers
    finally(function()
      if s then s:stop() end
      os.remove(gz)
      os.remove(child)
    end)
    -- 20,000,000 empty objects: 60 MB of JSON, some 60 KB gzipped.
    assert(os.execute(("(printf '{\"Items\":['; yes '{},' | head -c 60000000; printf '{}]}') | gzip -c > %s")
      :format(gz)))
    local size = #capture("cat " .. gz)
    assert.is_true(size < 200 * 1024, "gzip size " .. size)
    s = stub.start(([[
local f = assert(io.open(%q, "rb"))
local body = f:read("a")
f:close()
return { respond = function()
  return { status = 200, body = body,
           headers = { ["Content-Type"] = "application/json", ["Content-Encoding"] = "gzip" } }
end }]]):format(gz))
    local f = assert(io.open(child, "w"))
    f:write(CHILD)
    f:close()
    local out = capture(("lua5.4 %s %s 2>&1"):format(child, s.url))
    local kind, message, hwm = out:match("^([^|]*)|([^|]*)|(%d+)$")
    assert(kind, out)
    assert.are.equal("protocol", kind)
    assert.matches("too large to decode: more than 100,000 items in one array", message, 1, true)
    -- The 60 MB body is held twice at most (libcurl's buffer and the Lua
    -- string); the tables it would have made (gigabytes) never are.
    print(("amplification: %d KB gzip, 60 MB of JSON: refused, client peak RSS %.1f MB")
      :format(size // 1024, tonumber(hwm) / 1024))
    assert.is_true(tonumber(hwm) < 300 * 1024, "peak RSS " .. hwm .. " kB")
  end)
end)
