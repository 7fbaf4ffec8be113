-- Lost responses: a create whose response is lost leaves exactly one order,
-- a receipt whose response is lost is not sent again; the quota and
-- throttling answers become quota and rate_limited errors.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"

local function bolt(qty, price)
  return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = qty, UnitPrice = price }
end

local function fast_client(sb, events)
  return unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                        max_retries = 12, retry_base = 0.001, retry_cap = 0.005,
                        on_request = events and function(ev) events[#events + 1] = ev end }
end

describe("with half the responses lost", function()
  local sb, client, events

  setup(function()
    sb = sandbox.start{ seed = 5, admin = true, drop_rate = 0.5 }
    events = {}
    client = fast_client(sb, events)
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  local function count_orders()
    return client.purchase_orders:page(1, { pageSize = 1,
        orderStatus = "Placed,Parked" }).pagination.NumberOfItems
  end

  local function first_attempt_lost(method, path)
    for _, ev in ipairs(events) do
      if ev.method == method and ev.path == path and ev.attempt == 1 then return ev.kind ~= nil end
    end
    return false
  end

  it("a create whose first response is lost leaves exactly one order", function()
    local before = count_orders()
    local created, lost = {}, 0
    for i = 1, 12 do
      events = {}
      client.on_request = function(ev) events[#events + 1] = ev end
      local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Placed",
        PurchaseOrderLines = { bolt(i, 2.5) } }
      created[#created + 1] = { po = po, qty = i }
      if first_attempt_lost("POST", "/PurchaseOrders/" .. po.Guid) then lost = lost + 1 end
      if lost >= 3 then break end
    end
    assert.is_true(lost >= 1, "no create lost its first response")
    assert.equal(before + #created, count_orders())
    for _, c in ipairs(created) do
      local got = client.purchase_orders:get(c.po.Guid)
      assert.equal(c.po.OrderNumber, got.OrderNumber)
      assert.equal(1, #got.PurchaseOrderLines)
      assert.equal(c.qty, got.PurchaseOrderLines[1].OrderQuantity)
      assert.equal(unleashed.round(c.qty * 2.5, 2), got.SubTotal)
      local matches = 0
      for po in client.purchase_orders:each({ orderNumber = c.po.OrderNumber }) do
        if po.Guid == c.po.Guid then matches = matches + 1 end
      end
      assert.equal(1, matches)
    end
  end)

  it("a receipt whose response is lost is checked, not sent again", function()
    local lost = 0
    for _ = 1, 12 do
      local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Placed",
        PurchaseOrderLines = { bolt(1, 1) } }
      events = {}
      client.on_request = function(ev) events[#events + 1] = ev end
      sb:reset()
      po:receipt()
      assert.equal("Receipted", po.OrderStatus)
      local path = "/PurchaseOrders/" .. po.Guid .. "/Receipt"
      assert.equal(1, sb:stats().Calls["POST " .. path])
      if first_attempt_lost("POST", path) then lost = lost + 1 end
      if lost >= 2 then break end
    end
    assert.is_true(lost >= 1, "no receipt lost its response")
  end)

  it("an add_line whose response is lost leaves exactly one new line", function()
    local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked" }
    local lost = 0
    for i = 1, 10 do
      events = {}
      client.on_request = function(ev) events[#events + 1] = ev end
      local line = po:add_line{ Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 1, UnitPrice = i }
      assert.equal(i, line.LineNumber)
      assert.equal(i, #po.PurchaseOrderLines)
      if first_attempt_lost("POST", "/PurchaseOrders/" .. po.Guid .. "/Lines") then lost = lost + 1 end
      if lost >= 2 then break end
    end
    assert.is_true(lost >= 1, "no add_line lost its response")
    assert.equal(#po.PurchaseOrderLines, #client.purchase_orders:get(po.Guid).PurchaseOrderLines)
  end)
end)

describe("with injected server faults", function()
  it("a page that keeps failing ends the listing with a server error naming it", function()
    local sb = sandbox.start{ seed = 100, admin = true, fail_rate = 0.3 }
    local client = fast_client(sb)
    local failed
    for _ = 1, 5 do
      local ok, e = pcall(client.purchase_orders.list, client.purchase_orders, nil,
                          { page_size = 5, retries = 0 })
      if not ok then failed = e; break end
    end
    local all = client.purchase_orders:list(nil, { page_size = 5 })   -- retried: every page arrives
    local expected = client.purchase_orders:page(1, { pageSize = 1 }).pagination.NumberOfItems
    client:close()
    sb:stop()
    assert.is_table(failed, "no listing failed")
    assert.equal("server", failed.kind)
    assert.is_true(failed.status >= 500)
    assert.equal("GET", failed.method)
    assert.matches("^/PurchaseOrders", failed.path)
    assert.matches("injected", tostring(failed))
    assert.equal(expected, #all)
  end)
end)

describe("quota and throttling", function()
  it("stops at the monthly quota without retrying", function()
    local sb = sandbox.start{ seed = 3, admin = true, quota = 2 }
    local client = fast_client(sb)
    client:request("GET", "/Taxes")
    client:request("GET", "/Taxes")
    local ok, e = pcall(client.request, client, "GET", "/Taxes")
    client:close()
    local stats = sb:stats()
    sb:stop()
    assert.is_false(ok)
    assert.equal("quota", e.kind)
    assert.equal(429, e.status)
    assert.equal(1, e.attempts)
    assert.equal(3, stats.Total)
    assert.matches("quota", tostring(e))
  end)

  it("reports throttling as rate_limited when retries are spent", function()
    local sb = sandbox.start{ seed = 3, admin = true, throttle = "1/30" }
    local client = fast_client(sb)
    client:request("GET", "/Taxes")
    local ok, e = pcall(client.request, client, "GET", "/Taxes", { retries = 0 })
    client:close()
    sb:stop()
    assert.is_false(ok)
    assert.equal("rate_limited", e.kind)
    assert.equal(429, e.status)
  end)
end)

describe("a create under lost responses, 5xx and spoiled bodies", function()
  it("returns the order or an error whose guid finds it; one order per GUID", function()
    local sb = sandbox.start{ seed = 7, admin = true, drop_rate = 0.4, fail_rate = 0.2, bad_body_rate = 0.2 }
    local client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                                  max_retries = 6, retry_base = 0.001, retry_cap = 0.005 }
    local tag = "CREATE-FAULTS-"
    local function order(i, g)
      return { Guid = g, Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked", Comments = tag .. i,
               PurchaseOrderLines = { { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = i,
                                        UnitPrice = 1.5 } } }
    end
    -- The tax lookups first (cached per client): the creates below then make
    -- only their own calls.
    local fill_order = require("unleashed.purchase_orders").fill_order
    for _ = 1, 20 do
      if pcall(fill_order, client, order(1)) then break end
    end
    local guids, raised = {}, 0   -- creates that raised (a lookup that gave up)
    for i = 1, 30 do
      local ok, po = pcall(client.purchase_orders.create, client.purchase_orders, order(i))
      if not ok then
        raised = raised + 1
        assert.is_true(unleashed.Error.is_ambiguous(po), tostring(po))
        assert.is_string(po.guid, tostring(po))
        assert.matches("retry the create with Guid " .. po.guid, tostring(po), 1, true)
        for _ = 1, 20 do   -- the retry the error asks for
          ok, po = pcall(client.purchase_orders.create, client.purchase_orders, order(i, po.guid))
          if ok then break end
          assert.is_string(po.guid)
        end
        assert.is_true(ok, tostring(po))
      end
      assert.equal(i, po.PurchaseOrderLines[1].OrderQuantity)
      guids[i] = po.Guid
    end
    local listed
    for _ = 1, 10 do
      local ok, l = pcall(client.purchase_orders.list, client.purchase_orders, { orderStatus = "Parked" },
                          { page_size = 50 })
      if ok then listed = l; break end
    end
    client:close()
    sb:stop()
    assert.is_table(listed, "no listing got through the faults")
    -- The lookup after an ambiguous failure is retried: with these faults
    -- (and this seed) every create returns its order at the first call.
    assert.equal(0, raised)
    local per_guid, per_tag = {}, {}
    for _, po in ipairs(listed) do
      per_guid[po.Guid] = (per_guid[po.Guid] or 0) + 1
      if type(po.Comments) == "string" and po.Comments:find(tag, 1, true) then
        per_tag[po.Comments] = (per_tag[po.Comments] or 0) + 1
      end
    end
    for i, g in ipairs(guids) do
      assert.equal(1, per_guid[g], "orders under " .. g)
      assert.equal(1, per_tag[tag .. i], "orders " .. tag .. i)
    end
  end)
end)

describe("a listing whose pages arrive spoiled", function()
  it("requests a spoiled page again: every order arrives once", function()
    local want = {}
    local clean = sandbox.start{ seed = 120 }   -- the same data, without the faults
    for page = 1, 3 do
      local doc = clean:json("GET", "/PurchaseOrders/Page/" .. page, { { "pageSize", "50" } })
      for _, po in ipairs(doc.Items) do want[#want + 1] = po.Guid end
    end
    clean:stop()
    local sb = sandbox.start{ seed = 120, admin = true, bad_body_rate = 0.3 }
    local client = fast_client(sb)
    local events = {}
    client.on_request = function(ev) events[#events + 1] = ev end
    local got = client.purchase_orders:list(nil, { page_size = 5, concurrency = 3 })
    client:close()
    sb:stop()
    assert.equal(#want, #got)
    for i, po in ipairs(got) do assert.equal(want[i], po.Guid) end
    local pages = {}
    for _, ev in ipairs(events) do pages[ev.path] = (pages[ev.path] or 0) + 1 end
    local repeated = 0
    for _, n in pairs(pages) do if n > 1 then repeated = repeated + 1 end end
    assert.is_true(repeated > 0, "no page was spoiled and requested again")
  end)
end)

describe("receipt facing a lost response or throttling", function()
  local stub = require "support.stub_control"
  local G = "00000000-0000-4000-8000-000000000042"

  -- A stub that answers the receipt POSTs from `posts` (in order) and every
  -- GET of the order with the order as Receipted.
  local function start(posts)
    return stub.start(([=[
local G = %q
local json = { ["Content-Type"] = "application/json" }
local function order(status)
  return ('{"Guid":"%%s","OrderNumber":"PO-00000042","OrderStatus":"%%s","PurchaseOrderLines":[]}')
    :format(G, status)
end
local posts, n = %s, 0
return { respond = function(req)
  if req.method == "POST" then
    n = n + 1
    local r = posts[math.min(n, #posts)]
    return { status = r.status, headers = { ["Content-Type"] = "application/json",
      ["Retry-After"] = r.retry_after }, body = r.status == 200 and order("Receipted") or r.body,
      partial = r.partial }
  end
  return { status = 200, headers = json, body = order("Receipted") }
end }
]=]):format(G, posts))
  end

  local function client_for(s, opts)
    local o = { api_id = "id", api_key = "a2V5", base_url = s.url, retry_base = 0.001 }
    for k, v in pairs(opts) do o[k] = v end
    return unleashed.new(o)
  end

  local function placed(client)
    local po = client.purchase_orders:get(G)
    po.OrderStatus = "Placed"   -- as it was before the receipt
    return po
  end

  local function calls(s)
    local out = {}
    for _, r in ipairs(s:requests()) do out[#out + 1] = r.method end
    return table.concat(out, " ")
  end

  it("reads the order back after a lost response even with max_retries = 0", function()
    local s = start([[{ { status = 200, partial = 10 } }]])
    local client = client_for(s, { max_retries = 0 })
    local po = placed(client)
    local before = #s:requests()
    local ok, err = pcall(po.receipt, po)
    local seen = {}
    for i, r in ipairs(s:requests()) do if i > before then seen[#seen + 1] = r.method end end
    client:close()
    s:stop()
    assert.is_true(ok, tostring(err))
    assert.equal("Receipted", po.OrderStatus)
    assert.same({ "POST", "GET" }, seen)   -- sent once, then read back
  end)

  it("sends again after a 429, once its Retry-After has passed", function()
    local s = start([[{ { status = 429, retry_after = "1", body = '{"Description":"Too many requests"}' },
                        { status = 200 } }]])
    local client = client_for(s, { max_retries = 2, retry_cap = 5 })
    local po = placed(client)
    po:receipt()
    local posts = {}
    for _, r in ipairs(s:requests()) do if r.method == "POST" then posts[#posts + 1] = r end end
    local methods = calls(s)
    client:close()
    s:stop()
    assert.equal("Receipted", po.OrderStatus)
    assert.equal(2, #posts)
    assert.matches("POST POST$", methods)   -- refused unprocessed: nothing to read back
    assert.is_true(posts[2].t - posts[1].t >= 0.9, "waited " .. (posts[2].t - posts[1].t))
  end)

  it("raises rate_limited with the wait at once when Retry-After exceeds retry_cap", function()
    local s = start([[{ { status = 429, retry_after = "120", body = '{"Description":"Too many requests"}' },
                        { status = 200 } }]])
    local client = client_for(s, { max_retries = 3, retry_cap = 1 })
    local po = placed(client)
    local ok, err = pcall(po.receipt, po)
    local methods = calls(s)
    client:close()
    s:stop()
    assert.is_false(ok)
    assert.equal("rate_limited", err.kind)
    assert.equal(120, err.retry_after)
    assert.equal("Placed", po.OrderStatus)
    assert.matches("GET POST$", methods)
  end)
end)
