-- The pager's parser thread (client:pager with opts.parse, as listings use
-- it): each 2xx page is parsed off the Lua thread into a Page that holds no
-- body, and the listing builds each item only when it reads it.
local core = require "unleashed.core"
local json = require "unleashed.json"
local client_mod = require "unleashed.client"
local stub = require "support.stub_control"

local KEY = "parse-key"

local function new_client(base_url)
  return core.new_client{ api_id = "parse-company", api_key = KEY, base_url = base_url,
                          retry_base = 0.01, retry_cap = 0.5, timeout = 10 }
end

local function serve(script_src)
  local s = stub.start("return " .. script_src)
  finally(function() s:stop() end)
  return s
end

-- Page n: `per` orders with dates, nulls, integer line numbers and escapes;
-- pages answer out of order. Page 7 is not JSON, page 8 a 404.
local PAGES = [[{ respond = function(req)
  local page = tonumber(req.path:match("(%d+)$"))
  if page == 7 then return { status = 200, body = '{"Items":[{"a":1},' } end
  if page == 8 then return { status = 404, body = '{"Description":"no such page"}' } end
  local per = tonumber(req.query:match("pageSize=(%d+)")) or 3
  local items = {}
  for i = 1, per do
    items[i] = ('{"Guid":"g-%d-%d","OrderDate":"\\/Date(%d)\\/","Comments":null,"Note":"/Date(1)/",'
      .. '"Total":%d.125,"Supplier":{"SupplierCode":"S\\u0026%d"},'
      .. '"PurchaseOrderLines":[{"LineNumber":1,"Qty":2.5},{"LineNumber":2,"Qty":null}]}')
      :format(page, i, 1700000000000 + i * 1000, i, i % 4)
  end
  return { status = 200, delay = ((page * 7) % 5) * 0.02,
           body = ('{"Pagination":{"NumberOfItems":%d,"PageSize":%d,"PageNumber":%d,"NumberOfPages":9},'
             .. '"Items":[%s]}'):format(per * 9, per, page, table.concat(items, ",")) }
end }]]

local function same(a, b)
  if type(a) ~= type(b) or math.type(a) ~= math.type(b) then return false end
  if type(a) ~= "table" then return a == b end
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- A listing of `pages` pages of `per` orders, every page a good one.
local LISTING = [[{ respond = function(req)
  local page = tonumber(req.path:match("/Page/(%d+)$")) or 1
  local per = tonumber(req.query:match("pageSize=(%d+)")) or 3
  local items = {}
  for i = 1, per do items[i] = ('{"Guid":"g-%d-%d","Total":%d.5}'):format(page, i, i) end
  return { status = 200,
           body = ('{"Pagination":{"NumberOfItems":%d,"PageSize":%d,"PageNumber":%d,"NumberOfPages":4},'
             .. '"Items":[%s]}'):format(per * 4, per, page, table.concat(items, ",")) }
end }]]

describe("client:pager with parse", function()
  it("hands out parsed pages without their bodies, built an item at a time as decode builds them", function()
    local s = serve(PAGES)
    local c = new_client(s.url)
    local plain = c:pager("/PurchaseOrders/Page/%d", { first = 2, last = 6, concurrency = 4,
                                                       query = { pageSize = 50 } })
    local bodies = {}
    for n, res in plain.next, plain do bodies[n] = res.body end
    local p = c:pager("/PurchaseOrders/Page/%d", { first = 2, last = 6, concurrency = 4, parse = true,
                                                   query = { pageSize = 50 } })
    local seen = {}
    for n, res in p.next, p do
      seen[#seen + 1] = n
      assert.are.equal(200, res.status)
      assert.is_nil(res.body)
      local page = assert(res.page)
      assert.is_nil(page:error())
      local want = assert(json.decode(bodies[n]))
      assert.are.equal(50, page:count())
      assert.is_true(same(want.Pagination, page:pagination()))
      assert.are.equal("integer", math.type(page:pagination().NumberOfPages))
      for i = 1, 50 do assert.is_true(same(want.Items[i], page:item(i)), "page " .. n .. " item " .. i) end
      assert.is_true(same(want, page:doc()))
      local guids = page:guids()
      assert.are.equal(50, #guids)
      for i = 1, 50 do assert.are.equal(want.Items[i].Guid, guids[i]) end
      local item = page:item(50)
      assert.are.equal("2023-11-14T22:14:10.000Z", item.OrderDate)
      assert.are.equal("/Date(1)/", item.Note)
      assert.is_nil(item.Comments)
      assert.are.equal("S&2", item.Supplier.SupplierCode)
      assert.are.equal("integer", math.type(item.PurchaseOrderLines[2].LineNumber))
    end
    assert.are.same({ 2, 3, 4, 5, 6 }, seen)
  end)

  -- Pages of some 400 KB: their bodies, tapes and strings are mappings, which
  -- the pager keeps for the next pages (a pool the pages hold too); this runs
  -- under ASan and valgrind with the rest, so a buffer used after it went
  -- back, or one lost, shows there.
  it("reuses the large buffers of one page for the next, and a page outlives its pager", function()
    local s = serve(PAGES)
    local c = new_client(s.url)
    local q = { pageSize = 1500 }
    local plain = c:pager("/PurchaseOrders/Page/%d", { first = 1, last = 6, concurrency = 2, query = q })
    local bodies = {}
    for n, res in plain.next, plain do bodies[n] = res.body end
    assert.is_true(#bodies[1] > 256 * 1024, "pages large enough to be mapped")
    local p = c:pager("/PurchaseOrders/Page/%d",
                      { first = 1, last = 6, concurrency = 2, parse = true, query = q })
    local kept = {}
    for n, res in p.next, p do
      local page = assert(res.page)
      local want = assert(json.decode(bodies[n]))
      assert.are.equal(1500, page:count())
      for _, i in ipairs({ 1, 750, 1500 }) do
        assert.is_true(same(want.Items[i], page:item(i)), "page " .. n .. " item " .. i)
      end
      if n % 2 == 0 then kept[n] = page else page:free() end
    end
    p:close()
    p = nil   -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    for n, page in pairs(kept) do
      local want = assert(json.decode(bodies[n]))
      assert.is_true(same(want, page:doc()), "page " .. n .. " after its pager went")
      page:free()
    end
  end)

  it("hands a page that is not JSON back with the reason, and a 404 with its body", function()
    local s = serve(PAGES)
    local c = new_client(s.url)
    local p = c:pager("/PurchaseOrders/Page/%d", { first = 7, last = 8, retries = 0, parse = true })
    local n, res = p:next()
    assert.are.equal(7, n)
    local why, kind = res.page:error()
    assert.are.equal("syntax", kind)
    assert.matches("unexpected end of input", why)
    local ok, err = pcall(client_mod.page_body, res, "GET", "/PurchaseOrders/Page/7")
    assert.is_false(ok)
    assert.are.equal("protocol", err.kind)
    assert.matches("not JSON", err.message)
    n, res = p:next()
    assert.are.equal(8, n)
    assert.are.equal(404, res.status)
    assert.is_nil(res.page)
    assert.are.equal('{"Description":"no such page"}', res.body)
  end)

  it("is closed or collected while its thread parses, without harm", function()
    local s = serve(PAGES)
    local c = new_client(s.url)
    for round = 1, 6 do
      local p = c:pager("/PurchaseOrders/Page/%d", { first = 1, last = 6, concurrency = 6, parse = true,
                                                     query = { pageSize = 400 } })
      local n, res = p:next()
      assert.are.equal(1, n)
      assert.are.equal(400, res.page:count())
      if round % 2 == 0 then p:close() end
      p = nil   -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
    end
    c:close()
  end)

  it("frees a page on page:free(), after which only page:error() answers", function()
    local text = '{"Pagination":{"PageSize":2},"Items":[{"Guid":"a","Total":1.5},{"Guid":"b"}]}'
    local page = core.parse_page(text)
    local item = page:item(1)
    page:free()
    for _, call in ipairs{ function() return page:count() end, function() return page:item(2) end,
                           function() return page:pagination() end, function() return page:doc() end,
                           function() return page:guids() end } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("page: freed", err)
    end
    assert.is_nil(page:error())
    page:free()   -- twice: nothing more to free
    assert.are.same({ Guid = "a", Total = 1.5 }, item)   -- what was built stays
    assert.matches("nothing parsed", select(2, pcall(function() return core.parse_page("{"):count() end)))
  end)

  it("has the listing free each parsed page once its last item is handed out, and on a break", function()
    local unleashed = require "unleashed"
    local s = serve(LISTING)
    core.parse_page("{}")   -- the Page metatable exists from here on
    local methods = debug.getregistry()["unleashed.Page"].__index
    local real_free = methods.free
    finally(function() methods.free = real_free end)
    local handed, freed = 0, {}
    methods.free = function(page)
      freed[#freed + 1] = handed
      return real_free(page)
    end
    local client = unleashed.new{ api_id = "parse-company", api_key = KEY, base_url = s.url,
                                  max_retries = 0, timeout = 10, page_size = 5, concurrency = 2 }
    local guids = {}
    for po in client.purchase_orders:each() do
      handed = handed + 1
      guids[#guids + 1] = po.Guid
    end
    assert.are.equal(20, #guids)
    assert.are.equal("g-4-5", guids[20])
    -- page 1 is decoded whole; pages 2 to 4 come parsed, each freed before the next is read
    assert.are.same({ 10, 15, 20 }, freed)
    handed, freed = 0, {}
    for _ in client.purchase_orders:each() do
      handed = handed + 1
      if handed == 7 then break end
    end
    assert.are.same({ 7 }, freed)   -- the page being read, freed by the break
    client:close()
  end)

  it("gives the listing's pages lazily: an item is built when the listing reads it", function()
    local s = serve(PAGES)
    local c = new_client(s.url)
    local p = c:pager("/PurchaseOrders/Page/%d", { first = 2, last = 2, parse = true,
                                                   query = { pageSize = 5 } })
    local _, res = p:next()
    local doc = client_mod.page_body(res, "GET", "/PurchaseOrders/Page/2")
    assert.are.equal(5, #doc.Items)
    assert.is_nil(rawget(doc.Items, 1))
    local first = doc.Items[1]
    assert.are.equal("g-2-1", first.Guid)
    assert.are.equal(first, doc.Items[1])   -- built once
    assert.is_nil(doc.Items[6])
    assert.is_nil(doc.Items[0])
    assert.are.equal(5, doc.Pagination.PageSize)
  end)
end)
