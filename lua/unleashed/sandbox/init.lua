-- unleashed.sandbox: the Unleashed API's behaviour for the local sandbox.
--   local app = require("unleashed.sandbox").new{ seed = N, credentials = { [id] = key }, clock = fn,
--                                                prerender = true }
--     prerender (default true): render each listed order's default JSON when
--     the app is built or loaded, so that no request pays for a first render
--     of its page (for --seed 20000: about 0.8 s of start-up, 90 MB).
--   app:handle(req) -> resp      auth, JSON-only negotiation, routing, the API's rules
--   app:dump() -> string, app:load(string)   the mutable state (orders, stock, numbering)
-- No faults, latency or call counting here: unleashed.sandbox.server adds those.
local core = require "unleashed.core"
local json = require "unleashed.sandbox.json"
local data = require "unleashed.sandbox.data"
local orders = require "unleashed.sandbox.orders"
local validate = require "unleashed.sandbox.validate"
local listing = require "unleashed.sandbox.listing"

local M = {}

local fmt = string.format
local concat = table.concat

M.USER = "sandbox@unleashed.local"
M.CONTENT_TYPE = "application/json; charset=utf-8"
local DUMP_FORMAT = 1

local App = {}
App.__index = App

-- ---- construction -----------------------------------------------------------
-- The wall clock to the millisecond, stamped on every change as
-- LastModifiedOn; it never goes back.
local function default_clock()
  local last = 0
  return function()
    local t = core.now_ms()
    if t < last then t = last end
    last = t
    return t
  end
end

-- Indexes self.orders. Rendered JSON is kept for orders that are the same
-- objects as before (a state loaded over the seed it was saved from), so
-- that loading does not render them all again.
function App:_index_orders()
  local old_by_guid, old_cache = self.by_guid or {}, self.cache
  self.by_guid, self.by_number = {}, {}
  for _, o in ipairs(self.orders) do
    self.by_guid[o.Guid] = o
    self.by_number[o.OrderNumber:lower()] = o
  end
  self.cache = { {}, {}, {}, {} }   -- [variant][Guid] = the order's JSON
  for v, c in ipairs(old_cache or {}) do
    local keep = self.cache[v]
    for g, json_text in pairs(c) do
      local o = self.by_guid[g]
      if o ~= nil and o == old_by_guid[g] then keep[g] = json_text end
    end
  end
  self.list_cache = {}       -- filter key -> { version, orders }
  self.list_cache_n = 0
  self.version = (self.version or 0) + 1
  if self.prerender then self:_prerender() end
end

-- Runs fn with the collector paused: seeding and rendering make data that
-- lives as long as the app, and collecting while it grows only marks it
-- again and again (about a sixth of start-up for --seed 20000, for some
-- 5% more peak memory). The collector's state is restored even on error.
local function without_collector(fn)
  local was_running = collectgarbage("isrunning")
  collectgarbage("stop")
  local ok, err = pcall(fn)
  if was_running then collectgarbage("restart") end
  if not ok then error(err, 0) end
end

function M.new(opts)
  opts = opts or {}
  local seed = opts.seed or 0
  if math.type(seed) ~= "integer" then
    seed = math.tointeger(seed)
    if not seed then error("sandbox.new: seed must be an integer", 2) end
  end
  if seed < 0 then error("sandbox.new: seed must be 0 or more", 2) end
  if opts.credentials ~= nil and type(opts.credentials) ~= "table" then
    error("sandbox.new: credentials must be a table { [id] = key }", 2)
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then
    error("sandbox.new: clock must be a function returning ms since 1970", 2)
  end
  if opts.prerender ~= nil and type(opts.prerender) ~= "boolean" then
    error("sandbox.new: prerender must be a boolean", 2)
  end
  local self = setmetatable({
    seed = seed,
    credentials = opts.credentials or {},
    clock = opts.clock or default_clock(),
    user = opts.user or M.USER,
    prerender = opts.prerender ~= false,
  }, App)
  self.ref = data.reference(seed, seed)
  self.orders, self.stock = {}, {}
  self.next_number = 1
  self.changes = 0
  self.rng = data.rng(seed, 3)        -- Guids the sandbox makes at run time
  without_collector(function()
    self.seeded = data.seed_orders(self, seed)
    self.next_number = self.seeded + 1
    self:_index_orders()
  end)
  return self
end

-- ---- responses ----------------------------------------------------------------
local function respond(status, body, extra)
  local headers = { ["Content-Type"] = M.CONTENT_TYPE }
  if extra then for k, v in pairs(extra) do headers[k] = v end end
  return { status = status, headers = headers, body = body }
end

local function describe(status, description, extra)
  return respond(status, '{"Description":' .. json.str(description) .. "}", extra)
end

local function invalid(errs) return respond(400, errs:json()) end

local function one_problem(field, description)
  local errs = validate.errors()
  errs:add(field, description)
  return invalid(errs)
end

-- ---- auth and negotiation -----------------------------------------------------
local function media_type(v)
  return (v:match("^%s*([^;,%s]+)") or ""):lower()
end

-- Accept: any of application/json, application/*, */*; none sent is fine.
local function accepts_json(v)
  if v == nil or v:match("^%s*$") then return true end
  for part in v:gmatch("[^,]+") do
    local mt = media_type(part)
    if mt == "application/json" or mt == "application/*" or mt == "*/*" then return true end
  end
  return false
end

local function bytes_equal(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end

function App:_authenticate(req, signed)
  local headers = req.headers or {}
  local id = headers["api-auth-id"]
  local key = id and self.credentials[id]
  if type(key) ~= "string" then
    return describe(403, "Forbidden: the api-auth-id header is missing or not a known API id")
  end
  local sig = headers["api-auth-signature"]
  if type(sig) ~= "string" or not bytes_equal(sig, core.sign(signed, key)) then
    return describe(403, "Forbidden: the api-auth-signature header does not match the query string "
                    .. "(sign the decoded query, parameters in the order sent, with the API key)")
  end
  return nil
end

local function negotiate(req)
  local headers = req.headers or {}
  if not accepts_json(headers["accept"]) then
    return describe(406, "Not Acceptable: this sandbox serves only application/json (Accept: "
                    .. headers["accept"] .. ")")
  end
  local ct = headers["content-type"]
  if ct and not ct:match("^%s*$") and media_type(ct) ~= "application/json" then
    return describe(415, "Unsupported Media Type: this sandbox serves only application/json (Content-Type: "
                    .. ct .. ")")
  end
  return nil
end

-- ---- order encoding with a per-order cache --------------------------------------
function App:_changed(order)
  -- Two changes of one order never share a LastModifiedOn (a change feed
  -- tells versions apart by it): a second change within the millisecond of
  -- the one before is stamped a millisecond later.
  self.stamps = self.stamps or {}
  local before = self.stamps[order.Guid]
  if before and order.LastModifiedOn <= before then order.LastModifiedOn = before + 1 end
  self.stamps[order.Guid] = order.LastModifiedOn
  order.changed = true
  self.changes = self.changes + 1
  for _, c in ipairs(self.cache) do c[order.Guid] = nil end
  self.version = self.version + 1
end

function App:order_json(order, brief, serial_batch)
  local c = self.cache[(brief and 1 or 2) + (serial_batch and 2 or 0)]
  local s = c[order.Guid]
  if not s then
    s = orders.to_json(order, self.ref, brief, serial_batch)
    c[order.Guid] = s
  end
  return s
end

-- Renders, ahead of the first request, what a listing with no filter and a
-- GET of an order answer by default (brief, no serialBatch): the first
-- render of each order is the costly part of a page, and a fresh sandbox
-- would otherwise serve its first listing at a fraction of its speed.
function App:_prerender()
  local c, ref = self.cache[1], self.ref
  for _, o in ipairs(self.orders) do
    if o.OrderStatus ~= "Deleted" and not c[o.Guid] then c[o.Guid] = orders.to_json(o, ref, true, false) end
  end
end

function App:_filtered(f)
  local hit = self.list_cache[f.key]
  if hit and hit.version == self.version then return hit.orders end
  local match = listing.matcher(f, self.ref)
  local out = {}
  if f.order_number then
    local o = self.by_number[f.order_number]
    if o then out[1] = o end
  else
    for _, o in ipairs(self.orders) do if match(o) then out[#out + 1] = o end end
  end
  if self.list_cache_n >= 32 then self.list_cache, self.list_cache_n = {}, 0 end
  if not hit then self.list_cache_n = self.list_cache_n + 1 end
  self.list_cache[f.key] = { version = self.version, orders = out }
  return out
end

-- ---- context for lifecycle steps --------------------------------------------------
function App:new_guid() return self.rng:guid() end

function App:_ctx()
  return { ref = self.ref, stock = self.stock, now = self.clock(), user = self.user,
           new_guid = function() return self.rng:guid() end }
end

local function decode_body(body)
  if body == nil or body:match("^%s*$") then return nil, "The request body is empty; send a JSON object" end
  local t, err = json.decode(body)
  if t == nil then return nil, "The request body is not valid JSON: " .. tostring(err) end
  if type(t) ~= "table" then return nil, "The request body must be a JSON object" end
  return t
end

local function stamp_pending(list, now)
  local out = {}
  for i, p in ipairs(list or {}) do
    out[i] = { BatchNumber = p.BatchNumber, SerialNumber = p.SerialNumber, Quantity = p.Quantity,
               ExpiryDate = p.ExpiryDate, CreatedOn = now }
  end
  return out
end

local function new_line(l, ctx)
  return {
    Guid = l.Guid or ctx.new_guid(), LineNumber = l.LineNumber, product = l.product.Guid,
    unit = l.unit, factor = l.factor, PurchaseUnitOrderQuantity = l.OrderQuantity,
    UnitPrice = l.UnitPrice, DiscountRate = l.DiscountRate or 0, Comments = l.Comments,
    DeliveryDate = l.DeliveryDate, PurchaseUnitReceiptQuantity = l.ReceiptQuantity,
    volume_override = l.Volume, weight_override = l.Weight,
    pending_batches = stamp_pending(l.pending_batches, ctx.now),
    pending_serials = stamp_pending(l.pending_serials, ctx.now),
    batches = {}, serials = {}, LastModifiedBy = ctx.user, LastModifiedOn = ctx.now,
  }
end

-- Writes answer with the whole order: full products and batch/serial fields.
-- A create answers 201 Created, as every create the live API was recorded
-- answering did (the bare object, no envelope).
function App:_full(order, status)
  return respond(status or 200, self:order_json(order, false, true))
end

-- A receipt's batch and serial numbers, checked before stock moves: 400
-- with one item per line that falls short (orders.receipt_problems).
local function receipt_refusal(order, ref)
  local problems = orders.receipt_problems(order, ref)
  if #problems == 0 then return nil end
  local errs = validate.errors()
  for _, p in ipairs(problems) do
    errs:add(p[1], p[2], p[1]:find("Serial") and "SerialNumbersMismatch" or "BatchQuantitiesMismatch")
  end
  return invalid(errs)
end

local header_fields = {
  "Comments", "DeliveryCity", "DeliveryCountry", "DeliveryName", "DeliveryPostCode", "DeliveryRegion",
  "DeliveryStreetAddress", "DeliveryStreetAddress2", "DeliverySuburb", "SupplierEORI", "SupplierRef",
  "DeliveryDate", "OrderDate", "SupplierInvoiceDate", "DiscountRate",
}

-- ---- purchase order handlers --------------------------------------------------------
function App:create_order(guid, body)
  if self.by_guid[guid] then
    return one_problem("Guid", "A purchase order with this Guid already exists")
  end
  local t, err = decode_body(body)
  if not t then return describe(400, err) end
  local errs = validate.errors()
  local f = validate.order_post(t, self.ref, errs)
  if not f then return invalid(errs) end
  if f.Guid and f.Guid:lower() ~= guid then
    errs:add("Guid", "Guid in the body must match the Guid in the URL")
  end
  if f.OrderNumber and self.by_number[f.OrderNumber:lower()] then
    errs:add("OrderNumber", fmt("OrderNumber %s is already used by another purchase order", f.OrderNumber))
  end
  if errs:any() then return invalid(errs) end
  local ctx = self:_ctx()
  local number = f.OrderNumber
  if not number then
    repeat
      number = fmt("PO-%08d", self.next_number)
      self.next_number = self.next_number + 1
    until not self.by_number[number:lower()]
  end
  local sup = f.supplier
  local order = {
    Guid = guid, OrderNumber = number, OrderStatus = f.OrderStatus,
    supplier = sup.Guid, currency = sup.Currency.Guid,
    warehouse = (f.warehouse or self.ref.default_warehouse).Guid,
    tax_code = f.tax and f.tax.TaxCode,
    ExchangeRate = f.ExchangeRate or sup.Currency.ExchangeRate,
    OrderDate = f.OrderDate or ctx.now, Printed = false,
    CreatedBy = ctx.user, CreatedOn = ctx.now, LastModifiedBy = ctx.user, LastModifiedOn = ctx.now,
    lines = {}, costs = {},
  }
  for _, name in ipairs(header_fields) do
    if f[name] ~= nil then order[name] = f[name] end
  end
  order.DiscountRate = order.DiscountRate or 0
  order.SupplierEORI = order.SupplierEORI or sup.EORINumber
  for i, l in ipairs(f.lines) do order.lines[i] = new_line(l, ctx) end
  -- Complete on create: receipted and completed at once.
  if order.OrderStatus == "Complete" then
    local refused = receipt_refusal(order, self.ref)
    if refused then return refused end
    orders.receipt(order, ctx)
    orders.complete(order, ctx)
  end
  orders.recompute(order, self.ref)
  self.orders[#self.orders + 1] = order
  self.by_guid[guid] = order
  self.by_number[number:lower()] = order
  self:_changed(order)
  return self:_full(order, 201)
end

local function closed_status(order)
  if order.OrderStatus == "Deleted" then
    return fmt("Purchase order %s is Deleted and can no longer be changed", order.OrderNumber)
  end
  if order.OrderStatus == "Complete" then
    return fmt("Purchase order %s is Complete and can no longer be changed", order.OrderNumber)
  end
end

-- PUT: absent optional fields keep their values, null clears them.
function App:update_order(order, body)
  local closed = closed_status(order)
  if closed then return describe(400, closed) end
  local t, err = decode_body(body)
  if not t then return describe(400, err) end
  local errs = validate.errors()
  local f = validate.order_put(t, self.ref, errs, order.OrderStatus)
  if not f then return invalid(errs) end
  local cur, new = order.OrderStatus, f.OrderStatus
  local receipted = orders.receipted_statuses[cur]
  if new then
    if not receipted then
      if new == "Costed" then
        errs:add("OrderStatus", fmt("Purchase order %s is %s: it must be receipted before it can be Costed",
                                    order.OrderNumber, cur))
      elseif (new == "Placed" or new == "Complete") and #order.lines == 0 then
        errs:add("PurchaseOrderLines", fmt("A %s purchase order needs at least one line", new))
      end
    elseif new == "Parked" or new == "Placed" then
      errs:add("OrderStatus", fmt("Purchase order %s is %s: it cannot go back to %s after receipt",
                                  order.OrderNumber, cur, new))
    end
  end
  if receipted and f.supplier and f.supplier.Guid ~= order.supplier then
    errs:add("Supplier", "Supplier cannot change after the purchase order is receipted")
  end
  if receipted and f.warehouse and f.warehouse.Guid ~= order.warehouse then
    errs:add("Warehouse", "Warehouse cannot change after the purchase order is receipted")
  end
  if errs:any() then return invalid(errs) end
  if new == "Complete" and not receipted then
    local refused = receipt_refusal(order, self.ref)
    if refused then return refused end
  end
  local ctx = self:_ctx()
  if f.supplier and f.supplier.Guid ~= order.supplier then
    order.supplier = f.supplier.Guid
    if order.currency ~= f.supplier.Currency.Guid then
      -- The currency follows the supplier's (Currency is N/A on PUT).
      order.currency = f.supplier.Currency.Guid
      order.ExchangeRate = f.supplier.Currency.ExchangeRate
    end
  end
  if f.warehouse then order.warehouse = f.warehouse.Guid end
  for _, name in ipairs(header_fields) do
    if f.present[name] then order[name] = f[name] end
  end
  order.DiscountRate = order.DiscountRate or 0
  if f.ExchangeRate then order.ExchangeRate = f.ExchangeRate end
  if f.present.TaxCode or f.present.TaxRate then order.tax_code = f.tax and f.tax.TaxCode end
  if new and new ~= cur then
    if new == "Complete" then
      if not receipted then orders.receipt(order, ctx) end
      orders.complete(order, ctx)
    else
      order.OrderStatus = new
      if new ~= "Placed" then order.CustomOrderStatus = nil end
    end
  end
  orders.touch(order, ctx)
  self:_changed(order)
  return self:_full(order)
end

function App:delete_order(order)
  if order.OrderStatus == "Deleted" then return self:_full(order) end   -- a retried DELETE succeeds
  if orders.receipted_statuses[order.OrderStatus] then
    return describe(400,
      fmt("Purchase order %s is %s: only an order that is not yet receipted can be deleted",
                             order.OrderNumber, order.OrderStatus))
  end
  order.OrderStatus = "Deleted"
  order.CustomOrderStatus = nil
  orders.touch(order, self:_ctx())
  self:_changed(order)
  return self:_full(order)
end

-- Receipt only from Placed: a Parked order must be placed first (400).
function App:receipt_order(order)
  if order.OrderStatus ~= "Placed" then
    return describe(400, fmt("Purchase order %s is %s: only a Placed purchase order can be receipted",
                             order.OrderNumber, order.OrderStatus))
  end
  local refused = receipt_refusal(order, self.ref)
  if refused then return refused end
  local ctx = self:_ctx()
  orders.receipt(order, ctx)
  orders.touch(order, ctx)
  self:_changed(order)
  return self:_full(order)
end

-- Complete only from Receipted or Costed; anything else is a 400.
function App:complete_order(order)
  if order.OrderStatus ~= "Receipted" and order.OrderStatus ~= "Costed" then
    return describe(400, fmt("Purchase order %s is %s: only a Receipted or Costed purchase order can be "
                             .. "completed", order.OrderNumber, order.OrderStatus))
  end
  local ctx = self:_ctx()
  orders.complete(order, ctx)
  orders.touch(order, ctx)
  self:_changed(order)
  return self:_full(order)
end

local function lines_locked(order)
  local closed = closed_status(order)
  if closed then return closed end
  if orders.receipted_statuses[order.OrderStatus] then
    return fmt("Purchase order %s is %s: its lines cannot change after receipt",
               order.OrderNumber, order.OrderStatus)
  end
end

function App:add_line(order, body)
  local locked = lines_locked(order)
  if locked then return describe(400, locked) end
  local t, err = decode_body(body)
  if not t then return describe(400, err) end
  local errs = validate.errors()
  local l = validate.read_line(t, "", errs, self.ref, "post")
  if not l then return invalid(errs) end
  for _, line in ipairs(order.lines) do
    if l.LineNumber and line.LineNumber == l.LineNumber then
      errs:add("LineNumber", fmt("LineNumber %d is already used by another line of this order", l.LineNumber))
    end
    if l.Guid and line.Guid == l.Guid then errs:add("Guid", "A line with this Guid already exists") end
  end
  validate.default_price(l, order.ExchangeRate)
  validate.check_line_arithmetic(l, "", errs, l.DiscountRate)
  if errs:any() then return invalid(errs) end
  local ctx = self:_ctx()
  order.lines[#order.lines + 1] = new_line(l, ctx)
  orders.touch(order, ctx)
  self:_changed(order)
  return self:_full(order, 201)
end

local function find_line(order, line_guid)
  for i, line in ipairs(order.lines) do
    if line.Guid == line_guid then return line, i end
  end
end

function App:update_line(order, line_guid, body)
  local line = find_line(order, line_guid)
  if not line then
    return describe(404, "No line with Guid " .. line_guid .. " on purchase order " .. order.OrderNumber)
  end
  local locked = lines_locked(order)
  if locked then return describe(400, locked) end
  local t, err = decode_body(body)
  if not t then return describe(400, err) end
  local errs = validate.errors()
  local l = validate.read_line(t, "", errs, self.ref, "put", line)
  if not l then return invalid(errs) end
  if l.Guid and l.Guid ~= line_guid then
    errs:add("Guid", "Guid in the body must match the line Guid in the URL")
  end
  -- Fields not sent keep their values; OrderQuantity is in the line's unit.
  if l.UnitPrice == nil then l.UnitPrice = line.UnitPrice end
  local discount = l.DiscountRate
  if not l.present.DiscountRate then discount = line.DiscountRate end
  validate.check_line_arithmetic(l, "", errs, discount)
  if errs:any() then return invalid(errs) end
  local ctx = self:_ctx()
  line.PurchaseUnitOrderQuantity = l.OrderQuantity
  line.UnitPrice = l.UnitPrice
  line.DiscountRate = discount or 0
  if l.present.Comments then line.Comments = l.Comments end
  if l.present.DeliveryDate then line.DeliveryDate = l.DeliveryDate end
  if l.present.ReceiptQuantity then line.PurchaseUnitReceiptQuantity = l.ReceiptQuantity end
  if l.pending_batches then line.pending_batches = stamp_pending(l.pending_batches, ctx.now) end
  if l.pending_serials then line.pending_serials = stamp_pending(l.pending_serials, ctx.now) end
  line.LastModifiedOn, line.LastModifiedBy = ctx.now, ctx.user
  orders.touch(order, ctx)
  self:_changed(order)
  return self:_full(order)
end

function App:delete_line(order, line_guid)
  local line, i = find_line(order, line_guid)
  if not line then
    return describe(404, "No line with Guid " .. line_guid .. " on purchase order " .. order.OrderNumber)
  end
  local locked = lines_locked(order)
  if locked then return describe(400, locked) end
  if order.OrderStatus == "Placed" and #order.lines == 1 then
    return describe(400, fmt("Purchase order %s is Placed and needs at least one line: park it before "
                             .. "deleting its last line", order.OrderNumber))
  end
  table.remove(order.lines, i)
  orders.touch(order, self:_ctx())
  self:_changed(order)
  return self:_full(order)
end

function App:order_costs(order, map)
  local size, err = listing.page_size(map)
  if not size then return one_problem("pageSize", err) end
  local ref = self.ref
  -- All costs of an order on one page, in the list envelope.
  local body = listing.page(order.costs, 1, math.max(size, #order.costs), function(c)
    return orders.cost_json(c, order, ref)
  end)
  return respond(200, body)
end

-- ---- listing ---------------------------------------------------------------------
function App:list_orders(map, page)
  local errs = validate.errors()
  local size, err = listing.page_size(map)
  if not size then errs:add("pageSize", err) end
  local f = listing.read_filters(map, errs)
  if errs:any() then return invalid(errs) end
  local list = self:_filtered(f)
  local brief, sb = f.brief, f.serial_batch
  return respond(200, listing.page(list, page, size, function(o) return self:order_json(o, brief, sb) end))
end

function App:get_order(order, map)
  local errs = validate.errors()
  local f = listing.read_filters(map, errs)
  if errs:any() then return invalid(errs) end
  return respond(200, self:order_json(order, f.brief, f.serial_batch))
end

-- ---- reference resources -------------------------------------------------------
-- Each in the shape the recorded answers give it (Products as in 2021,
-- Warehouses as nested in 2021, Taxes and Currencies as nested in 2014 and
-- 2018, with the rates the Taxes page and the currency fields name);
-- Suppliers were never recorded: the fields the tax hierarchy reads
-- (Taxable, TaxRate), the currency, and the codes.
local str, dec6, bool, date = json.str, function(x) return json.decp(x, 6) end, json.bool, json.date
local function decp(x, places) return json.decp(x, places) end

local function product_json(p)
  local tiers = {}
  for t = 1, 10 do
    tiers[t] = concat{ ',"SellPriceTier', t, '":{"Name":', str(p.tiers[t][1]),
                       ',"Value":', str(p.tiers[t][2]), '}' }
  end
  local g, u, sup = p.ProductGroup, p.UnitOfMeasure, p.supplier
  return concat{ '{"ProductCode":', str(p.ProductCode), ',"ProductDescription":', str(p.ProductDescription),
    ',"Barcode":', str(p.Barcode), ',"PackSize":', decp(p.PackSize, 4), ',"Width":', decp(p.Width, 3),
    ',"Height":', decp(p.Height, 3), ',"Depth":', decp(p.Depth, 3), ',"Weight":', decp(p.Weight, 3),
    ',"MinStockAlertLevel":', decp(p.MinStockAlertLevel, 4),
    ',"MaxStockAlertLevel":', decp(p.MaxStockAlertLevel, 4), ',"ReOrderPoint":null',
    ',"UnitOfMeasure":', orders.unit_ref(u), ',"NeverDiminishing":false',
    ',"LastCost":', decp(p.LastCost, 4), ',"DefaultPurchasePrice":', decp(p.DefaultPurchasePrice, 4),
    ',"DefaultSellPrice":', decp(p.DefaultSellPrice, 4), ',"CustomerSellPrice":null',
    ',"AverageLandPrice":', decp(p.AverageLandPrice, 4), ',"Obsolete":', bool(p.Obsolete),
    ',"Notes":', str(p.Notes),
    ',"Images":', p.ImageUrl and concat{ '[{"Url":', str(p.ImageUrl), ',"IsDefault":true}]' } or "null",
    ',"ImageUrl":', str(p.ImageUrl), concat(tiers),
    ',"XeroTaxCode":', str(p.XeroTaxCode), ',"XeroTaxRate":', dec6(p.XeroTaxRate),
    ',"TaxablePurchase":', bool(p.TaxablePurchase), ',"TaxableSales":', bool(p.TaxableSales),
    ',"XeroSalesTaxCode":', str(p.XeroSalesTaxCode), ',"XeroSalesTaxRate":', dec6(p.XeroSalesTaxRate),
    ',"IsComponent":false,"IsAssembledProduct":false',
    ',"ProductGroup":{"GroupName":', str(g.GroupName), ',"Guid":', str(g.Guid),
      ',"LastModifiedOn":', date(g.LastModifiedOn), '}',
    ',"XeroSalesAccount":null,"XeroCostOfGoodsAccount":null,"PurchaseAccount":null,"BinLocation":null',
    ',"Supplier":', sup and concat{ '{"SupplierProductCode":', str(p.SupplierProductCode),
      ',"SupplierProductDescription":', str(p.SupplierProductDescription),
      ',"SupplierProductPrice":', decp(p.DefaultPurchasePrice, 4), ',"Guid":', str(sup.Guid),
      ',"SupplierCode":', str(sup.SupplierCode), ',"SupplierName":', str(sup.SupplierName), '}' } or "null",
    ',"AttributeSet":null,"SourceId":null,"SourceVariantParentId":null',
    ',"IsSerialized":', bool(p.IsSerialized), ',"IsBatchTracked":', bool(p.IsBatchTracked),
    ',"IsSellable":true,"MinimumSellPrice":null,"MinimumSaleQuantity":null,"MinimumOrderQuantity":null',
    ',"CreatedBy":', str(p.CreatedBy), ',"CreatedOn":', date(p.CreatedOn),
    ',"LastModifiedBy":', str(p.LastModifiedBy),
    ',"CommerceCode":null,"CustomsDescription":null,"SupplementaryClassificationAbbreviation":null',
    ',"ICCCountryCode":null,"ICCCountryName":null',
    ',"Guid":', str(p.Guid), ',"LastModifiedOn":', date(p.LastModifiedOn), '}' }
end

local function supplier_json(s)
  return concat{ '{"Guid":', str(s.Guid), ',"SupplierCode":', str(s.SupplierCode),
    ',"SupplierName":', str(s.SupplierName), ',"Email":', str(s.Email),
    ',"Currency":', orders.currency_ref(s.Currency), ',"Taxable":', bool(s.Taxable),
    ',"TaxRate":', dec6(s.TaxRate), ',"EORINumber":', str(s.EORINumber), ',"Obsolete":', bool(s.Obsolete),
    ',"CreatedOn":', date(s.CreatedOn), ',"LastModifiedOn":', date(s.LastModifiedOn), '}' }
end

local function currency_json(c)
  return concat{ '{"CurrencyCode":', str(c.CurrencyCode), ',"Description":', str(c.Description),
    ',"DefaultBuyRate":', dec6(c.DefaultBuyRate), ',"DefaultSellRate":', dec6(c.DefaultSellRate),
    ',"Guid":', str(c.Guid), ',"LastModifiedOn":', date(c.LastModifiedOn), '}' }
end

-- The documented filters of each resource: a code (prefix or exact match,
-- case-insensitive), includeObsolete (default false: obsolete records are
-- left out), the Taxes page's canApplyToExpenses and canApplyToRevenue, and
-- modifiedSince (LastModifiedOn on or after it) everywhere.
local reference = {
  suppliers = { list = "suppliers", by_guid = "supplier_by_guid", encode = supplier_json,
                code = { "suppliercode", "supplierCode", "SupplierCode", "prefix" }, obsolete = true },
  products = { list = "products", by_guid = "product_by_guid", encode = product_json,
               code = { "productcode", "productCode", "ProductCode", "prefix" }, obsolete = true },
  warehouses = { list = "warehouses", by_guid = "warehouse_by_guid", encode = orders.warehouse_ref,
                 code = { "warehousecode", "warehouseCode", "WarehouseCode", "exact" }, obsolete = true },
  currencies = { list = "currencies", by_guid = "currency_by_guid", encode = currency_json },
  taxes = { list = "taxes", by_guid = "tax_by_guid", encode = orders.tax_ref,
            flags = { { "canapplytoexpenses", "canApplyToExpenses", "CanApplyToExpenses" },
                      { "canapplytorevenue", "canApplyToRevenue", "CanApplyToRevenue" } } },
}

function App:_ref_json(kind, item)
  local key = "_json"
  if not item[key] then item[key] = reference[kind].encode(item, self.ref) end
  return item[key]
end

-- The items a listing of `kind` selects with the query `map`, or nil and
-- the 400 answer for a filter value that cannot be read.
function App:_ref_items(kind, map)
  local spec = reference[kind]
  local errs = validate.errors()
  local since = listing.parse_filter_date(map, "modifiedSince", "modifiedsince", errs)
  local with_obsolete = spec.obsolete and listing.parse_bool(map, "includeObsolete", "includeobsolete", false,
                                                             errs)
  local flags = {}
  for _, f in ipairs(spec.flags or {}) do
    local v = listing.parse_bool(map, f[2], f[1], nil, errs)
    if v ~= nil then flags[#flags + 1] = { f[3], v } end
  end
  if errs:any() then return nil, invalid(errs) end
  local code = spec.code and map[spec.code[1]]
  if code == "" then code = nil end
  code = code and code:lower()
  local out = {}
  for _, item in ipairs(self.ref[spec.list]) do
    local keep = with_obsolete or not (spec.obsolete and item.Obsolete)
    if keep and code then
      local c = item[spec.code[3]]:lower()
      if spec.code[4] == "prefix" then keep = c:sub(1, #code) == code else keep = c == code end
    end
    if keep and since then keep = item.LastModifiedOn ~= nil and item.LastModifiedOn >= since end
    for _, f in ipairs(flags) do
      if keep and item[f[1]] ~= f[2] then keep = false end
    end
    if keep then out[#out + 1] = item end
  end
  return out
end

-- ---- routing -----------------------------------------------------------------------
-- A page segment: digits. Returns the page, nil (not a page: 404), or false
-- and a 400 response for page 0 or one too large.
local function page_number(seg)
  if not seg:match("^%d+$") then return nil end
  local n = #seg <= 9 and tonumber(seg)
  if not n or n < 1 then
    return false, one_problem("pageNumber", fmt("The page number must be from 1 to 999999999 (got %s)", seg))
  end
  return n
end

local function not_found(path)
  return describe(404, "No resource at " .. path)
end

local function not_allowed(allow)
  return describe(405, "Method not allowed here; allowed: " .. allow, { Allow = allow })
end

local function guid_problem(seg)
  return one_problem("Guid", fmt("%q is not a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)", seg))
end

function App:_route_reference(kind, segs, method, map, path)
  if method ~= "GET" then return not_allowed("GET") end
  local spec = reference[kind]
  local page = 1
  local n = #segs
  if n == 2 then
    local p, bad = page_number(segs[2])
    if p == false then return bad end
    if p then page = p
    elseif validate.is_guid(segs[2]) then
      local item = self.ref[spec.by_guid][segs[2]:lower()]
      if not item then return describe(404, fmt("No %s with Guid %s", kind:sub(1, -2), segs[2])) end
      return respond(200, self:_ref_json(kind, item))
    else
      return not_found(path)
    end
  elseif n == 3 and segs[2]:lower() == "page" then
    local p, bad = page_number(segs[3])
    if p == false then return bad end
    if not p then return not_found(path) end
    page = p
  elseif n ~= 1 then
    return not_found(path)
  end
  local size, err = listing.page_size(map)
  if not size then return one_problem("pageSize", err) end
  local items, refused = self:_ref_items(kind, map)
  if not items then return refused end
  return respond(200, listing.page(items, page, size, function(item) return self:_ref_json(kind, item) end))
end

function App:_route_orders(segs, method, map, path, body)
  local n = #segs
  if n == 1 then
    if method ~= "GET" then return not_allowed("GET") end
    return self:list_orders(map, 1)
  end
  local s2 = segs[2]
  if n == 3 and s2:lower() == "page" then
    if method ~= "GET" then return not_allowed("GET") end
    local p, bad = page_number(segs[3])
    if p == false then return bad end
    if not p then return not_found(path) end
    return self:list_orders(map, p)
  end
  local is_guid = validate.is_guid(s2)
  local guid = is_guid and s2:lower()
  if n == 2 then
    if method == "GET" then
      local p, bad = page_number(s2)
      if p == false then return bad end
      if p then return self:list_orders(map, p) end
      if not is_guid then return not_found(path) end
      local order = self.by_guid[guid]
      if not order then return describe(404, "No purchase order with Guid " .. s2) end
      return self:get_order(order, map)
    elseif method == "POST" or method == "PUT" or method == "DELETE" then
      if not is_guid then return guid_problem(s2) end
      if method == "POST" then return self:create_order(guid, body) end
      local order = self.by_guid[guid]
      if not order then return describe(404, "No purchase order with Guid " .. s2) end
      if method == "PUT" then return self:update_order(order, body) end
      return self:delete_order(order)
    end
    return not_allowed("GET, POST, PUT, DELETE")
  end
  local sub = segs[3]:lower()
  local allow
  if n == 3 and sub == "costs" then allow = "GET"
  elseif n == 3 and (sub == "lines" or sub == "receipt" or sub == "complete") then allow = "POST"
  elseif n == 4 and sub == "lines" then allow = "PUT, DELETE"
  else return not_found(path) end
  if not allow:find(method, 1, true) or method == "" then return not_allowed(allow) end
  if not is_guid then
    if method == "GET" then return not_found(path) end
    return guid_problem(s2)
  end
  local order = self.by_guid[guid]
  if not order then return describe(404, "No purchase order with Guid " .. s2) end
  if sub == "costs" then return self:order_costs(order, map) end
  if sub == "receipt" then return self:receipt_order(order) end
  if sub == "complete" then return self:complete_order(order) end
  if n == 3 then return self:add_line(order, body) end
  if not validate.is_guid(segs[4]) then
    return one_problem("Guid", fmt("%q is not a line GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)", segs[4]))
  end
  if method == "PUT" then return self:update_line(order, segs[4]:lower(), body) end
  return self:delete_line(order, segs[4]:lower())
end

function App:_dispatch(req)
  local params, signed = listing.parse_query(req.query or "")
  local denied = self:_authenticate(req, signed)
  if denied then return denied end
  local refused = negotiate(req)
  if refused then return refused end
  local path = req.path or "/"
  local segs = {}
  for seg in path:gmatch("[^/]+") do segs[#segs + 1] = seg end
  if #segs == 0 then return not_found(path) end
  local map = listing.param_map(params)
  local method = (req.method or ""):upper()
  local resource = segs[1]:lower()      -- resource names match case-insensitively, as ASP.NET routes do
  if resource == "purchaseorders" then
    return self:_route_orders(segs, method, map, path, req.body)
  elseif reference[resource] then
    return self:_route_reference(resource, segs, method, map, path)
  end
  return not_found(path)
end

--- The API's id and signature check alone: nil when the request may go on,
-- or the 403 answer. The server asks it as soon as a request's headers
-- arrive, before reading its body; _dispatch applies the same rule.
function App:authenticate(req)
  local _, signed = listing.parse_query(req.query or "")
  return self:_authenticate(req, signed)
end

function App:handle(req)
  local ok, resp = pcall(self._dispatch, self, req)
  if ok then return resp end
  return describe(500, "Internal sandbox error: " .. tostring(resp))
end

-- ---- state -------------------------------------------------------------------------
-- The dump holds what the seed cannot regenerate: orders created or changed
-- since seeding (with their places in creation order), stock, numbering and
-- the Guid generator's state. Loading regenerates the seeded orders from the
-- state's seed and lays the saved ones over them.
function App:dump()
  local changed = {}
  for i, o in ipairs(self.orders) do
    if o.changed then changed[#changed + 1] = { at = i, order = o } end
  end
  return json.encode_plain{
    format = DUMP_FORMAT, seed = self.seed, seeded = self.seeded, next_number = self.next_number,
    rng = fmt("%d", self.rng.s), orders = changed, stock = self.stock,
  }
end

local function check_order(o, ref, where)
  if type(o) ~= "table" or type(o.Guid) ~= "string" or type(o.OrderNumber) ~= "string"
      or type(o.OrderStatus) ~= "string" or type(o.lines) ~= "table"
      or not ref.supplier_by_guid[o.supplier] or not ref.warehouse_by_guid[o.warehouse]
      or not ref.currency_by_guid[o.currency] then
    error(fmt("sandbox state: %s is malformed or refers to unknown reference data", where), 3)
  end
  o.costs = o.costs or {}
  for _, line in ipairs(o.lines) do
    if not ref.product_by_guid[line.product] or not ref.unit_by_guid[line.unit] then
      error(fmt("sandbox state: a line of %s refers to an unknown product or unit", where), 3)
    end
    for _, k in ipairs{ "pending_batches", "pending_serials", "batches", "serials" } do
      line[k] = line[k] or {}
    end
    line.LineNumber = math.tointeger(line.LineNumber) or line.LineNumber
  end
end

function App:load(text)
  if type(text) ~= "string" then error("sandbox state: expected a string", 2) end
  local t, err = json.decode(text)
  if type(t) ~= "table" then error("sandbox state: not valid JSON: " .. tostring(err), 2) end
  if t.format ~= DUMP_FORMAT then error("sandbox state: unknown format " .. tostring(t.format), 2) end
  local seed = math.tointeger(t.seed)
  local seeded = math.tointeger(t.seeded)
  local next_number = math.tointeger(t.next_number)
  local rng_state = type(t.rng) == "string" and math.tointeger(tonumber(t.rng))
  if not seed or seed < 0 or not seeded or not next_number or not rng_state
      or type(t.orders) ~= "table" or type(t.stock) ~= "table" then
    error("sandbox state: missing or malformed seed, seeded, next_number, rng, orders or stock", 2)
  end
  -- The seeded orders: this app's own when it has the same seed and no
  -- change yet, otherwise regenerated (reference data comes from the seed).
  local base = self
  if seed ~= self.seed or self.changes > 0 then
    base = { seed = seed, orders = {}, stock = {}, ref = self.ref }
    if seed ~= self.seed then base.ref = data.reference(seed, seed) end
    without_collector(function() base.seeded = data.seed_orders(base, seed) end)
  end
  if base.seeded ~= seeded then error("sandbox state: seeded order count does not match the seed", 2) end
  local list = base.orders
  local changes = 0
  for i, entry in ipairs(t.orders) do
    local at = type(entry) == "table" and math.tointeger(entry.at)
    if not at or at < 1 or at > #list + 1 then
      error(fmt("sandbox state: entry %d has no valid place", i), 2)
    end
    check_order(entry.order, base.ref, "order " .. tostring(entry.order and entry.order.OrderNumber or i))
    list[at] = entry.order
    changes = changes + 1
  end
  for k, v in pairs(t.stock) do
    if type(k) ~= "string" or type(v) ~= "number" then error("sandbox state: malformed stock", 2) end
  end
  self.seed, self.ref, self.seeded = seed, base.ref, seeded
  self.orders, self.stock = list, t.stock
  self.next_number = next_number
  self.rng = data.rng(0, 0)
  self.rng.s = rng_state
  self.changes = changes
  without_collector(function() self:_index_orders() end)
end

-- Stock on hand by product and warehouse Guid (base units), for tests and tools.
function App:stock_on_hand(product_guid, warehouse_guid)
  return self.stock[orders.stock_key(product_guid, warehouse_guid)] or 0
end

return M
