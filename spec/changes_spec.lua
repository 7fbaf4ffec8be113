-- client.purchase_orders:changes: every order created or changed since a
-- checkpoint, once per LastModifiedOn, Deleted ones as deletions, in as few
-- calls as possible, and none missed while orders change during a listing
-- of several pages.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"
local changes = require "unleashed.changes"
local core = require "unleashed.core"
local files = require "support.files"

local ALL = changes.ALL_STATUSES

local function iso_ms(n) return (core.iso_date(n):gsub("Z$", "")) end

-- A millisecond later than every stamp made before the call: modifiedSince
-- is inclusive, and the test before may have changed an order within the
-- millisecond now_ms() gives first.
local function fresh_ms()
  local t = core.now_ms()
  while core.now_ms() == t do end
  return core.now_ms()
end

local function client_for(sb, opts)
  local o = { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
  for k, v in pairs(opts or {}) do o[k] = v end
  return unleashed.new(o)
end

-- Runs one round: the orders delivered (Guid -> { po, kind }), their count and the feed.
local function round(client, since, opts, filters)
  local spec = { since = since }
  for k, v in pairs(filters or {}) do spec[k] = v end
  local feed = client.purchase_orders:changes(spec, opts)
  local got, n = {}, 0
  for po, kind in feed do
    assert.is_nil(got[po.Guid], "delivered twice in one round: " .. po.Guid)
    got[po.Guid] = { po = po, kind = kind }
    n = n + 1
  end
  return got, n, feed
end

local function errors_of(fn)
  local ok, e = pcall(fn)
  assert.is_false(ok)
  assert.is_true(unleashed.Error.is(e, "validation"), tostring(e))
  local fields = {}
  for _, d in ipairs(e.details) do fields[d.field] = d.message end
  return fields, e
end

describe("purchase_orders:changes", function()
  local sb, client
  setup(function()
    sb = sandbox.start{ seed = 300, admin = true }
    client = client_for(sb)
  end)
  teardown(function()
    client:close()
    sb:stop()
  end)

  local function line(n)
    return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = n, UnitPrice = 2 }
  end

  it("delivers every order on a first round, Deleted ones as deletions, and a checkpoint", function()
    local truth = {}
    for po in client.purchase_orders:each{ orderStatus = ALL } do truth[po.Guid] = po end
    local got, n, feed = round(client, nil, { page_size = 100 })
    local deleted = 0
    for g, po in pairs(truth) do
      assert.is_truthy(got[g], "missing " .. po.OrderNumber)
      assert.equal(po.LastModifiedOn, got[g].po.LastModifiedOn)
      assert.equal(po.OrderStatus == "Deleted" and "deleted" or "changed", got[g].kind)
      if po.OrderStatus == "Deleted" then deleted = deleted + 1 end
    end
    local count = 0
    for _ in pairs(truth) do count = count + 1 end
    assert.equal(count, n)
    assert.is_true(deleted > 0, "the seed has Deleted orders")
    assert.is_true(feed.verified)
    assert.matches("^unleashed%-changes/1 since=%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d filters= seen=",
                   feed.checkpoint)
    -- the orders are order objects, with the methods of this client's orders
    local _, any = next(got)
    assert.equal("function", type(any.po.refresh))
  end)

  it("costs one call and delivers nothing when nothing changed", function()
    local _, _, first = round(client, nil)
    sb:reset()
    local got, n, feed = round(client, first.checkpoint)
    assert.equal(0, n)
    assert.is_nil(next(got))
    assert.equal(1, sb:stats().Total)
    assert.equal(1, feed.calls)
    assert.is_true(feed.verified)
  end)

  it("costs one call for 100 changes at page size 1000, and delivers exactly those", function()
    local _, _, first = round(client, nil)
    local changed = {}
    local placed = client.purchase_orders:page(1, { orderStatus = "Parked,Placed", pageSize = 100 }).items
    assert.is_true(#placed >= 100, "the seed has 100 Parked or Placed orders")
    for i = 1, 100 do
      placed[i]:update{ Comments = "change " .. i }
      changed[placed[i].Guid] = placed[i].LastModifiedOn
    end
    sb:reset()
    local got, n = round(client, first.checkpoint, { page_size = 1000 })
    assert.equal(1, sb:stats().Total)
    assert.equal(100, n)
    for g, lmo in pairs(changed) do
      assert.is_truthy(got[g])
      assert.equal(lmo, got[g].po.LastModifiedOn)
    end
  end)

  it("delivers an order stamped at the bound itself, and drops it when seen at that stamp", function()
    local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                              PurchaseOrderLines = { line(2) } }
    local lmo = assert(core.parse_date(po.LastModifiedOn))
    local got, n, feed = round(client, iso_ms(lmo))
    assert.is_truthy(got[po.Guid], "the order stamped at the bound itself")
    assert.is_true(n >= 1)
    -- The next round reads it again (it is inside the overlap) but drops it.
    local bound = feed.checkpoint:match(" since=(%S+)")
    local relisted = {}
    for o in client.purchase_orders:each{ orderStatus = ALL, modifiedSince = bound } do
      relisted[o.Guid] = true
    end
    assert.is_true(relisted[po.Guid], "the overlap reads the order again")
    assert.matches(po.Guid .. "@" .. lmo, feed.checkpoint, 1, true)
    local again, n2 = round(client, feed.checkpoint)
    assert.is_nil(again[po.Guid])
    assert.equal(0, n2)
    -- A new change brings it back, once, with its new stamp.
    po:update{ Comments = "again" }
    local third, n3 = round(client, feed.checkpoint)
    assert.equal(1, n3)
    assert.equal(po.LastModifiedOn, third[po.Guid].po.LastModifiedOn)
  end)

  it("follows only the orders its filters name, and keeps them in the checkpoint", function()
    local t0 = fresh_ms()
    local acme = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                                PurchaseOrderLines = { line(1) } }
    client.purchase_orders:create{ Supplier = { SupplierCode = "SMITH & SONS" }, OrderStatus = "Parked",
                                   PurchaseOrderLines = { line(1) } }
    local got, n, feed = round(client, iso_ms(t0), nil, { supplierCode = "ACME" })
    assert.equal(1, n)
    assert.is_truthy(got[acme.Guid])
    assert.matches(" filters=supplierCode=ACME ", feed.checkpoint, 1, true)
    local fields = errors_of(function() return client.purchase_orders:changes{ since = feed.checkpoint } end)
    assert.matches("other filters %(supplierCode=ACME%)", fields.since)
  end)

  it("honours exactSupplierCode: ACME's orders only, not ACME2's, with a checkpoint of its own", function()
    local t0 = fresh_ms()
    local acme = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                                PurchaseOrderLines = { line(1) } }
    local acme2 = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME2" },
                                                 OrderStatus = "Parked", PurchaseOrderLines = { line(1) } }
    local got, n, feed = round(client, iso_ms(t0), nil, { exactSupplierCode = "acme" })
    assert.equal(1, n)
    assert.is_truthy(got[acme.Guid])
    assert.is_nil(got[acme2.Guid])
    assert.is_true(feed.verified)
    assert.matches(" filters=exactSupplierCode=acme ", feed.checkpoint, 1, true)
    -- the prefix feed gets both, and the checkpoints are not interchangeable
    local both = round(client, iso_ms(t0), nil, { supplierCode = "ACME" })
    assert.is_truthy(both[acme.Guid] and both[acme2.Guid])
    local fields = errors_of(function()
      return client.purchase_orders:changes{ since = feed.checkpoint, supplierCode = "acme" }
    end)
    assert.matches("other filters", fields.since)
    -- its checkpoint goes on with the same filter
    acme2:update{ Comments = "not ACME" }
    acme:update{ Comments = "ACME" }
    local later = round(client, feed.checkpoint, nil, { exactSupplierCode = "acme" })
    assert.is_truthy(later[acme.Guid])
    assert.is_nil(later[acme2.Guid])
    fields = errors_of(function()
      return client.purchase_orders:changes{ exactSupplierCode = "ACME", supplierCode = "ACME" }
    end)
    assert.matches("cannot be combined with supplierCode", fields.exactSupplierCode)
  end)

  it("gives an order handed back with redeliver to the next round again", function()
    local t0 = core.now_ms()
    local a = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                             PurchaseOrderLines = { line(1) } }
    local b = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                             PurchaseOrderLines = { line(1) } }
    local feed = client.purchase_orders:changes{ since = iso_ms(t0) }
    local seen = {}
    for po in feed do
      seen[po.Guid] = true
      if po.Guid == a.Guid then feed:redeliver(po) end
    end
    assert.is_true(seen[a.Guid] and seen[b.Guid])
    local got = round(client, feed.checkpoint)
    assert.is_truthy(got[a.Guid], "the order handed back comes again")
    assert.is_nil(got[b.Guid], "the order done does not")
  end)

  it("hands out pages with pages(), and reports progress in pages", function()
    local feed = client.purchase_orders:changes({}, { page_size = 50, concurrency = 2,
      progress = function() end })
    local calls = {}
    feed.opts.progress = function(done, total) calls[#calls + 1] = { done, total } end
    local pages, total = 0, 0
    for orders in feed:pages() do
      pages = pages + 1
      assert.is_true(#orders <= 50)
      total = total + #orders
    end
    local truth = #client.purchase_orders:list{ orderStatus = ALL }
    assert.equal(truth, total)
    assert.is_true(pages >= truth // 50)
    assert.is_true(#calls >= truth // 50)
    local last = calls[#calls]
    assert.equal(last[1], last[2])
  end)

  it("refuses bad filters, checkpoints and options before any call", function()
    sb:reset()
    local fields = errors_of(function()
      return client.purchase_orders:changes{ modifiedSince = "2026-01-01", orderNumber = "PO-1", pageSize = 5,
                                             supplierCod = "ACME" }
    end)
    assert.matches("use since", fields.modifiedSince)
    assert.matches("overrides every other filter", fields.orderNumber)
    assert.matches("opts%.page_size", fields.pageSize)
    assert.matches("is not a purchase order filter", fields.supplierCod)
    fields = errors_of(function() return client.purchase_orders:changes{ since = "yesterday" } end)
    assert.matches("must be a checkpoint", fields.since)
    fields = errors_of(function()
      return client.purchase_orders:changes{ since = "unleashed-changes/1 junk" }
    end)
    assert.matches("is not a checkpoint", fields.since)
    fields = errors_of(function()
      return client.purchase_orders:changes({}, { overlap = -1, page_size = 0, concurrency = 65, progress = 1,
                                                 speed = 2 })
    end)
    assert.is_truthy(fields["opts.overlap"] and fields["opts.page_size"] and fields["opts.concurrency"]
                     and fields["opts.progress"] and fields["opts.speed"])
    assert.equal(0, sb:stats().Total)
    -- dates: ISO text or os.time() numbers
    local _, n1 = round(client, "2030-01-01")
    local _, n2 = round(client, 1893456000)
    assert.equal(0, n1)
    assert.equal(0, n2)
  end)
end)

describe("purchase_orders:changes in the reference", function()
  it("documents every option changes takes, and no other", function()
    local c <close> = unleashed.new{ api_id = "docs", api_key = "not-a-real-key",
                                     base_url = "http://127.0.0.1:9" }
    local _, e = errors_of(function() return c.purchase_orders:changes({}, { docs_unknown = 1 }) end)
    local valid = {}
    for name in e.details[1].message:match("%(valid: ([^)]+)%)"):gmatch("[%w_]+") do valid[name] = true end
    local doc = files.read_all((os.getenv("UNLEASHED_ROOT") or ".") .. "/docs/reference.md")
    local section = doc:match("\n### client%.purchase_orders:changes%(spec, opts%)\n(.-)\n### ")
    assert.is_truthy(section)
    local rows = {}
    for name in section:gmatch("\n| `([%w_]+)` |") do rows[name] = true end
    assert.same(valid, rows)
  end)
end)

describe("purchase_orders:changes while orders change", function()
  -- Pages are numbered slices of a live result. Orders that enter the
  -- result while it is read (changed since the bound, their LastModifiedOn
  -- older before) shift every slice after them: an order that did not
  -- change can fall between two slices read at different moments, or past
  -- the last page that page 1 announced. Here the sandbox lists in creation
  -- order, pages are small and answered out of order (latency with jitter,
  -- four in flight), and the ticker changes 300 orders a second.
  local SINCE = "2025-06-01"
  local PAGE = 25

  -- A fresh sandbox, the ticker on while `rounds` rounds of loop(client, state)
  -- run, then off for one last round; returns what the loop kept (Guid ->
  -- LastModifiedOn), the server's view, and what the loop reported.
  local function scenario(loop)
    local sb <close> = sandbox.start{ seed = 1000, admin = true, latency_ms = 10, jitter_ms = 30 }
    local client <close> = client_for(sb, { concurrency = 4 })
    local start = 0
    for _ in client.purchase_orders:each{ orderStatus = ALL, modifiedSince = SINCE } do start = start + 1 end
    assert.is_true(start > 8 * PAGE, "a listing of many pages")
    local state = { kept = {}, mark = SINCE, incomplete = 0 }
    sb:raw("POST", "/_sandbox/touch", nil, '{"Rate": 300}')
    for _ = 1, 3 do loop(client, state) end
    sb:raw("POST", "/_sandbox/touch", nil, '{"Rate": 0}')
    loop(client, state)
    local truth = {}
    for po in client.purchase_orders:each({ orderStatus = ALL, modifiedSince = SINCE },
                                          { page_size = 1000 }) do
      truth[po.Guid] = po.LastModifiedOn
    end
    sb:stop()
    local missing, stale, extra = 0, 0, 0
    for g, lmo in pairs(truth) do
      if state.kept[g] == nil then
        missing = missing + 1
      elseif state.kept[g] ~= lmo then
        stale = stale + 1
      end
    end
    for g in pairs(state.kept) do if truth[g] == nil then extra = extra + 1 end end
    return missing, stale, extra, state
  end

  it("misses no order, and ends equal to the server once the account is still", function()
    local missing, stale, extra = scenario(function(client, state)
      local feed = client.purchase_orders:changes({ since = state.mark }, { page_size = PAGE, overlap = 1 })
      for po in feed do state.kept[po.Guid] = po.LastModifiedOn end
      if not feed.verified or feed.listings > 1 then state.incomplete = state.incomplete + 1 end
      state.mark = feed.checkpoint
    end)
    assert.equal(0, missing, "orders the feed never delivered")
    assert.equal(0, stale, "orders whose last change the feed never delivered")
    assert.equal(0, extra)
  end)

  it("is a race a plain listing loop loses orders to", function()
    -- The loop scripts write: list with modifiedSince, then move the mark to
    -- the time the listing began, less the same overlap.
    local missing, stale = scenario(function(client, state)
      local began = core.now_ms()
      for po in client.purchase_orders:each({ orderStatus = ALL, modifiedSince = state.mark },
                                            { page_size = PAGE }) do
        state.kept[po.Guid] = po.LastModifiedOn
      end
      state.mark = iso_ms(began - 1000)
    end)
    assert.is_true(missing + stale > 0, "the plain loop missed nothing: the scenario does not race the pages")
  end)
end)
