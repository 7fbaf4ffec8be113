-- A server that misstates its page count cannot make a listing send requests
-- without end: a listing stops at the first empty or short page, never asks
-- for more pages than NumberOfItems allows, refuses a page numbered other
-- than the one asked for, hands out an order that moved between pages once,
-- and turns a NumberOfPages that is not a count into an unleashed.Error of
-- kind protocol. Each case counts the requests the stub received.
local stub = require "support.stub_control"
local unleashed = require "unleashed"

local ID, KEY = "lying-pages-spec-id", "bHlpbmctcGFnZXMtc3BlYy1rZXk="

-- The stub's script: page N of /Suppliers answers by the mode in the query
-- (the spec asks ?mode=...), PAGE items per full page.
local SCRIPT = [=[
local json = { ["Content-Type"] = "application/json" }
local function item(n)
  return ('{"Guid":"00000000-0000-4000-8000-%012d","SupplierCode":"S%d"}'):format(n, n)
end
local function page(items, pagination)
  return { status = 200, headers = json,
           body = '{"Pagination":' .. pagination .. ',"Items":[' .. table.concat(items, ",") .. ']}' }
end
local function items(from, count)
  local t = {}
  for i = from, from + count - 1 do t[#t + 1] = item(i) end
  return t
end
return { respond = function(req)
  local mode = req.query:match("mode=([%w_]+)")
  local size = tonumber(req.query:match("pageSize=(%d+)"))
  local n = tonumber(req.path:match("/Page/(%d+)$")) or 1
  if mode == "lying_pages" then
    -- NumberOfPages a billion, NumberOfItems honest: 2 full pages and a short one.
    local count = n <= 2 and size or (n == 3 and 1 or 0)
    return page(items((n - 1) * size, count),
      ('{"NumberOfItems":%d,"PageSize":%d,"PageNumber":%d,"NumberOfPages":1000000000}')
        :format(2 * size + 1, size, n))
  elseif mode == "empty_after_one" then
    -- Every figure lies: page 1 full, the rest empty, as pages past the end are.
    local count = n == 1 and size or 0
    return page(items(0, count),
      ('{"NumberOfItems":1000000000,"PageSize":%d,"PageNumber":%d,"NumberOfPages":1000000000}')
        :format(size, n))
  elseif mode == "repeat_first" then
    -- The page number is ignored: every page is page 1.
    return page(items(0, size),
      ('{"NumberOfItems":%d,"PageSize":%d,"PageNumber":1,"NumberOfPages":50}'):format(50 * size, size))
  elseif mode == "pages_float" or mode == "pages_negative" or mode == "pages_huge" then
    local v = ({ pages_float = "2.5", pages_negative = "-3", pages_huge = "1e300" })[mode]
    return page(items(0, size), ('{"NumberOfItems":10,"PageSize":%d,"NumberOfPages":%s}'):format(size, v))
  elseif mode == "short_first" then
    -- Page 1 holds fewer items than the page size, and no NumberOfItems
    -- says more follow: it is the only page.
    return page(items(0, 2), ('{"PageSize":%d,"PageNumber":1,"NumberOfPages":25}'):format(size))
  elseif mode == "smaller_pages" then
    -- The server's pages hold 2 items whatever PageSize it echoes: 7 items
    -- on 4 pages, as NumberOfItems and NumberOfPages say.
    return page(items((n - 1) * 2, n < 4 and 2 or (n == 4 and 1 or 0)),
      ('{"NumberOfItems":7,"PageSize":%d,"PageNumber":%d,"NumberOfPages":4}'):format(size, n))
  elseif mode == "moved" then
    -- Honest paging while orders move: page 3 holds page 1's orders again
    -- (they changed, and went to the end of the server's order).
    local from = ({ 0, 4, 0 })[n] or 0
    return page(items(from, n <= 3 and 4 or 0),
      ('{"NumberOfItems":12,"PageSize":%d,"PageNumber":%d,"NumberOfPages":3}'):format(size, n))
  end
  return { status = 404, headers = json, body = '{"Description":"no route"}' }
end }
]=]

describe("a listing facing a server that misstates its pages", function()
  local s, client

  setup(function()
    s = stub.start(SCRIPT)
    client = unleashed.new{ api_id = ID, api_key = KEY, base_url = s.url, max_retries = 0, timeout = 10,
                            page_size = 4, concurrency = 8 }
  end)

  teardown(function()
    if client then client:close() end
    if s then s:stop() end
  end)

  -- Requests of one listing: each listing sends its own run=N, and the count
  -- is read once the stub's log has stopped growing (pages cancelled in
  -- flight still reach it, a moment later).
  local runs = 0
  local function requests_of(run)
    local function count()
      local n = 0
      for _, r in ipairs(s:requests()) do
        local q = r.query .. "&"
        if q:find("run=" .. run .. "&", 1, true) then n = n + 1 end
      end
      return n
    end
    local last, n = -1, count()
    while n ~= last do
      os.execute("sleep 0.1")
      last, n = n, count()
    end
    return n
  end

  local function list(mode, opts)
    runs = runs + 1
    local got = {}
    local ok, err = pcall(function()
      for item in client:each("Suppliers", { mode = mode, run = runs }, opts) do
        got[#got + 1] = item.SupplierCode
      end
    end)
    return ok, err, got, requests_of(runs)
  end

  it("asks for no more pages than NumberOfItems / PageSize allows", function()
    local ok, err, got, sent = list("lying_pages")
    assert.is_true(ok, tostring(err))
    assert.are.equal(9, #got)
    assert.are.equal("S0", got[1])
    assert.are.equal("S8", got[9])
    assert.are.equal(3, sent)   -- ceil(9 / 4): NumberOfPages 1000000000 is not trusted
    print(("\nlying NumberOfPages (1000000000): %d requests for %d items"):format(sent, #got))
  end)

  it("stops at the first empty page when every figure lies", function()
    local ok, err, got, sent = list("empty_after_one", { concurrency = 1 })
    assert.is_true(ok, tostring(err))
    assert.are.equal(4, #got)
    -- The page that holds the items, the empty page that ends the listing,
    -- and the one page the pager had in flight meanwhile.
    assert.is_true(sent >= 2 and sent <= 1 + 1 + 1, "requests: " .. sent)
    print(("lying NumberOfItems and NumberOfPages, one page in flight: %d requests for %d items")
      :format(sent, #got))
  end)

  it("costs at most the pager's window past the end when every figure lies", function()
    local ok, err, got, sent = list("empty_after_one", { concurrency = 8 })
    assert.is_true(ok, tostring(err))
    assert.are.equal(4, #got)
    assert.is_true(sent >= 2 and sent <= 1 + 1 + 8, "requests: " .. sent)
    print(("lying NumberOfItems and NumberOfPages, 8 pages in flight: %d requests for %d items")
      :format(sent, #got))
  end)

  it("refuses a page that repeats orders already handed out, with kind protocol", function()
    local ok, err, got, sent = list("repeat_first", { concurrency = 2 })
    assert.is_false(ok)
    assert.is_true(unleashed.Error.is(err, "protocol"), tostring(err))
    assert.truthy(tostring(err):find("answered page 1 when asked for page 2: it is not paging", 1, true),
      tostring(err))
    assert.are.equal(4, #got)              -- page 1 once, never twice
    assert.is_true(sent <= 1 + 2 + 1, "requests: " .. sent)
  end)

  for _, mode in ipairs{ "pages_float", "pages_negative", "pages_huge" } do
    it(("turns a NumberOfPages that is not a count (%s) into kind protocol"):format(mode), function()
      local ok, err, got, sent = list(mode)
      assert.is_false(ok)
      assert.is_true(unleashed.Error.is(err, "protocol"), tostring(err))
      assert.truthy(tostring(err):find("NumberOfPages", 1, true), tostring(err))
      assert.are.equal(0, #got)
      assert.are.equal(1, sent)
    end)
  end

  it("raises kind closed when the client is closed in the middle of a listing", function()
    local c = unleashed.new{ api_id = ID, api_key = KEY, base_url = s.url, max_retries = 0, timeout = 10,
                             page_size = 4 }
    local got = {}
    local ok, err = pcall(function()
      for item in c:each("Suppliers", { mode = "lying_pages" }) do
        got[#got + 1] = item
        if #got == 2 then c:close() end
      end
    end)
    assert.is_false(ok)
    assert.is_true(unleashed.Error.is(err, "closed"), tostring(err))
    assert.are.equal(4, #got)   -- page 1 was in hand; nothing after it
  end)

  it("reads every page when the server's pages are smaller than the PageSize it answers", function()
    local ok, err, got, sent = list("smaller_pages")
    assert.is_true(ok, tostring(err))
    assert.are.same({ "S0", "S1", "S2", "S3", "S4", "S5", "S6" }, got)
    assert.are.equal(4, sent)
  end)

  it("hands out an order that moved to a later page once, and reads on", function()
    local ok, err, got, sent = list("moved")
    assert.is_true(ok, tostring(err))
    assert.are.same({ "S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7" }, got)
    assert.are.equal(3, sent)
  end)

  it("reads one page when page 1 is already short", function()
    local ok, err, got, sent = list("short_first")
    assert.is_true(ok, tostring(err))
    assert.are.equal(2, #got)
    assert.are.equal(1, sent)
  end)
end)
