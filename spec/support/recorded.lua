-- The recorded answers of the live API (spec/fixtures/recorded/, copies of
-- the public recordings with their INDEX.md): their text, and the status and
-- headers INDEX.md gives for each.
local files = require "support.files"

local M = {}

M.dir = (os.getenv("UNLEASHED_ROOT") or ".") .. "/spec/fixtures/recorded/"

--- The file's bytes, exactly as recorded; a missing file is an error.
function M.read(name)
  local f = io.open(M.dir .. name, "rb")
  assert(f, "missing recorded answer " .. M.dir .. name)
  local s = f:read("a")
  f:close()
  return s
end

-- Headers every 2014 answer had besides its own (INDEX.md, "Headers").
local HEADERS_2014 = {
  Server = "nginx/1.6.2", ["X-AspNetMvc-Version"] = "5.2", ["Cache-Control"] = "private",
}

--- name -> { status = N or nil, headers = { Name = value }, request = "METHOD /path?query" or nil },
-- from each "### name" section of INDEX.md. A file whose status was not
-- recorded (the 2018 bodies) has status nil; headers that were not recorded
-- are absent.
function M.index()
  local out, current = {}, nil
  for line in (files.read_all(M.dir .. "INDEX.md") .. "\n"):gmatch("([^\n]*)\n") do
    local name = line:match("^### (%S+)")
    if name then
      current = { headers = {} }
      out[name] = current
    elseif current and line:find("^%- Request:") then
      current.request = line:match("`(%u+ /[^`]*)`")
    elseif current and line:find("^%- Response:") then
      current.status = tonumber(line:match("^%- Response: (%d%d%d)"))
      current.headers["Content-Type"] = line:match("Content%-Type `([^`]+)`")
      current.headers.Allow = line:match("Allow `([^`]+)`")
      if line:find("Year 2014", 1, true) then
        for k, v in pairs(HEADERS_2014) do current.headers[k] = v end
      end
    end
  end
  return out
end

return M
