-- Reads from a sandbox that injects faults, without the client library: a
-- signed GET (safe to repeat) tried until it answers 200 with JSON, so that
-- what a spec checks afterwards does not depend on the code under test.
local cjson = require "cjson"
local socket = require "socket"

local M = {}

--- GET path (query: ordered { key, value } pairs) from sandbox sb, retried
-- past injected 5xx, 429, dropped and spoilt answers; returns the decoded body.
function M.get(sb, path, query, tries)
  local last
  for _ = 1, tries or 200 do
    local ok, status, _, body = pcall(sb.signed, sb, "GET", path, query)
    if ok and status == 200 then
      local dok, doc = pcall(cjson.decode, body)
      if dok and type(doc) == "table" then return doc end
      last = "undecodable body"
    else
      last = ok and ("status " .. tostring(status)) or tostring(status)
    end
    socket.sleep(0.02)
  end
  error(("GET %s kept failing (%s)"):format(path, tostring(last)), 2)
end

--- Every purchase order in the sandbox, Deleted ones included, read page by
-- page: a list of the API's objects.
function M.all_orders(sb)
  local statuses = "Parked,Placed,Costed,Receipted,Complete,Deleted,Unapproved"
  local out, page = {}, 1
  local pages
  repeat
    local query = { { "orderStatus", statuses }, { "pageSize", 500 } }
    local doc = M.get(sb, "/PurchaseOrders/Page/" .. page, query)
    for _, po in ipairs(doc.Items) do out[#out + 1] = po end
    pages = doc.Pagination.NumberOfPages
    page = page + 1
  until page > pages
  return out
end

return M
