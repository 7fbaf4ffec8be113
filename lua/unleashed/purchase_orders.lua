-- client.purchase_orders: listing, reading and creating purchase orders, and
-- the PurchaseOrder object (the API's table with methods from a metatable).
--
-- Safety of retries: an order and a line are created under a GUID the client
-- chooses, so their POSTs are idempotent and may be retried; after an
-- ambiguous failure the GUID is looked up. Receipt and Complete are not
-- idempotent: after an ambiguous failure the order is read back and the step
-- is tried again only if the order did not reach its status.
local Error = require "unleashed.error"
local guid = require "unleashed.guid"
local validate = require "unleashed.validate"
local filters = require "unleashed.filters"
local arithmetic = require "unleashed.arithmetic"
local client_mod = require "unleashed.client"

local M = {}

local BASE = "/PurchaseOrders"

local Resource = {}
Resource.__index = Resource
Resource.__name = "unleashed.PurchaseOrders"

local Order = {}   -- methods of every purchase order

local function order_tostring(po)
  return ("unleashed.PurchaseOrder(%s, %s, %s)"):format(tostring(rawget(po, "OrderNumber")),
    tostring(rawget(po, "OrderStatus")), tostring(rawget(po, "Guid")))
end

-- Each client has its own order metatable, which is how an order finds the
-- client (and so the company) it belongs to.
function M.new(client)
  local order_mt = { __index = Order, __name = "unleashed.PurchaseOrder", __tostring = order_tostring,
                     client = client }
  return setmetatable({ client = client, _order_mt = order_mt }, Resource)
end

local function client_of(po)
  local mt = getmetatable(po)
  local c = type(mt) == "table" and rawget(mt, "client")
  if not c then error("unleashed: not a purchase order (call methods with ':')", 3) end
  return c
end

local function is_order(v)
  return type(v) == "table" and type(v.Guid) == "string"
end

local function expect_order(v, res, method, path)
  if not is_order(v) then
    if type(v) == "table" and type(v.Items) == "table" and is_order(v.Items[1]) then return v.Items[1] end
    error(Error.protocol("the response is not a purchase order", method, path, res), 0)
  end
  return v
end

-- Replaces the object's fields in place with the server's answer.
local function replace(po, fresh)
  for k in pairs(po) do po[k] = nil end
  for k, v in pairs(fresh) do po[k] = v end
  return po
end

local function raise_problems(what, problems, method, path)
  if #problems > 0 then Error.raise_validation(what, problems, method, path) end
end

local function order_path(g) return BASE .. "/" .. g end

local function check_guid(g, field, method)
  if not guid.valid(g) then
    Error.raise_validation("invalid GUID", { { field = field,
      message = "must be a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX, hex digits)" } }, method)
  end
end

-- ---- listing ----------------------------------------------------------------

function Resource:_wrap()
  local mt = self._order_mt
  return function(item) return setmetatable(item, mt) end
end

--- purchase_orders:each(filters, opts): for po in ... do end
-- opts: concurrency, page_size, progress(pages_done, pages_total), timeout, retries.
-- filters.exactSupplierCode keeps only that supplier's orders (the API's
-- supplierCode is a prefix).
function Resource:each(f, opts)
  local query, problems, exact = filters.purchase_orders(f, true)
  local popts, oproblems = client_mod.check_paging_opts(opts, self.client.page_size, self.client.concurrency)
  for _, p in ipairs(oproblems) do problems[#problems + 1] = p end
  raise_problems("invalid listing", problems, "GET", BASE)
  local iterate, s, c, closer = self.client:_iterate(BASE, query, popts, self:_wrap())
  if not exact then return iterate, s, c, closer end
  local function matching()
    while true do
      local po = iterate()
      if po == nil then return nil end
      local sup = po.Supplier
      local code = type(sup) == "table" and sup.SupplierCode
      if type(code) == "string" and code:lower() == exact then return po end
    end
  end
  return matching, s, c, closer
end

--- purchase_orders:list(filters, opts) -> array of every order.
function Resource:list(f, opts)
  local out = {}
  for po in self:each(f, opts) do out[#out + 1] = po end
  return out
end

--- purchase_orders:page(n, filters) -> { items = {...}, pagination = {...} }
-- filters may carry pageSize (default: the client's page_size).
function Resource:page(n, f)
  local problems = {}
  if not math.tointeger(n) or n < 1 then
    problems[1] = { field = "page", message = "must be an integer of 1 or more" }
  end
  local query, fproblems = filters.purchase_orders(f)
  for _, p in ipairs(fproblems) do problems[#problems + 1] = p end
  raise_problems("invalid page request", problems, "GET", BASE)
  query.pageSize = query.pageSize or self.client.page_size
  local path = BASE .. "/Page/" .. math.tointeger(n)
  local doc, res = self.client:_call("GET", path, { query = query })
  client_mod.check_page(doc, res, "GET", path)
  local wrap = self:_wrap()
  for i, item in ipairs(doc.Items) do doc.Items[i] = wrap(item) end
  return { items = doc.Items, pagination = doc.Pagination }
end

local GET_OPTS = { serialBatch = true, brief = true }

local function get_query(opts)
  local problems, query = {}, {}
  if opts ~= nil and type(opts) ~= "table" then
    problems[1] = { field = "opts", message = "must be a table" }
    return query, problems
  end
  for k, v in pairs(opts or {}) do
    if not GET_OPTS[k] then
      problems[#problems + 1] = { field = tostring(k),
                                  message = "is not an option of get (valid: brief, serialBatch)" }
    elseif type(v) ~= "boolean" then
      problems[#problems + 1] = { field = k, message = "must be a boolean" }
    else
      query[k] = v
    end
  end
  return query, problems
end

-- The order with this GUID, or nil when the server has none (404).
function Resource:_find(g, query)
  local path = order_path(g)
  local ok, v, res = self.client:_try("GET", path, { query = query })
  if ok then return setmetatable(expect_order(v, res, "GET", path), self._order_mt) end
  if v.kind == "not_found" then return nil end
  error(v, 0)
end

-- The API's order numbers are at most 15 characters (the seed's field table).
local MAX_ORDER_NUMBER = 15

--- purchase_orders:get(ref, { serialBatch = true }) -> order
-- ref: the order's GUID, or its order number ("PO-00000016", in any case):
-- one GET by GUID, or one GET with the orderNumber filter.
function Resource:get(ref, opts)
  local query, problems = get_query(opts)
  local by_guid = guid.valid(ref)
  if not by_guid then
    local ok = type(ref) == "string" and ref ~= "" and not ref:find("%c") and utf8.len(ref)
      and utf8.len(ref) <= MAX_ORDER_NUMBER
    if not ok then
      table.insert(problems, 1, { field = "ref",
        message = "must be a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX, hex digits) or an order number "
          .. "(1 to " .. MAX_ORDER_NUMBER .. " characters, no control characters)" })
    end
  end
  local path = by_guid and order_path(ref) or BASE
  raise_problems("invalid purchase order reference", problems, "GET", path)
  if by_guid then
    local v, res = self.client:_call("GET", path, { query = query })
    return setmetatable(expect_order(v, res, "GET", path), self._order_mt)
  end
  query.orderNumber = ref
  local doc, res = self.client:_call("GET", path, { query = query })
  client_mod.check_page(doc, res, "GET", path)
  local want = ref:lower()
  for _, item in ipairs(doc.Items) do
    if type(item) == "table" and type(item.OrderNumber) == "string" and item.OrderNumber:lower() == want then
      return setmetatable(item, self._order_mt)
    end
  end
  local msg = "no purchase order with number " .. ref
  error(Error.new("not_found", msg, { method = "GET", path = path, status = res.status,
    attempts = res.attempts, details = { { field = "ref", message = msg } } }), 0)
end

-- ---- reference data for the arithmetic ----------------------------------------
-- A line's tax follows the hierarchy the seed page gives LineTax ("Follows
-- tax hierarchy: 1. Product 2. Purchase Order 3. Supplier 4. Default
-- Purchase tax"), read on the fields the live API has (docs/reference.md,
-- "Tax: how a line is priced", gives the evidence for each step):
--   0. a LineTax the caller gives always wins;
--   1. the product: TaxablePurchase == false is no tax; else XeroTaxRate;
--      else XeroTaxCode, looked up among the taxes for expenses;
--   2. the order: TaxCode (it "takes precedence over the Tax object"), then
--      Tax.TaxCode, Tax.TaxRate, then TaxRate; never a Tax's Guid (orders
--      carry the all-zero one);
--   3. the supplier: Taxable == false is no tax; else its TaxRate;
--   4. the client's default_purchase_tax (a code or a rate): no field of the
--      API gives the account's default purchase tax.
-- A line none of these prices is refused before anything is sent. Look-ups
-- are cached per client (per company): one Taxes listing with
-- canApplyToExpenses=true, made only when a code must be read; one GET per
-- product (productCode=) and per supplier.

local ZERO_GUID = "00000000-0000-0000-0000-000000000000"

local function cache(client, name)
  local c = client._cache[name]
  if not c then
    c = {}
    client._cache[name] = c
  end
  return c
end

-- The taxes that can apply to expenses and are not obsolete, by lower-case
-- code. The listing asks the server for expense taxes and checks each item
-- too. A code the list has twice for expenses with different rates is
-- ambiguous.
local function expense_taxes(client)
  local c = cache(client, "taxes")
  if not c.loaded then
    local by_code, clash = {}, {}
    for t in client:each("Taxes", { canApplyToExpenses = true }, { page_size = 1000 }) do
      if type(t) == "table" and type(t.TaxCode) == "string" and type(t.TaxRate) == "number"
          and t.Obsolete ~= true and t.CanApplyToExpenses ~= false then
        local k = t.TaxCode:lower()
        local seen = by_code[k]
        if seen and not arithmetic.same_rate(seen.TaxRate, t.TaxRate) then clash[k] = true end
        by_code[k] = seen or t
      end
    end
    c.by_code, c.clash, c.loaded = by_code, clash, true
  end
  return c
end

-- The rate of a tax code, or nil and why not.
local function rate_of_code(client, code)
  local c = expense_taxes(client)
  local k = code:lower()
  if c.clash[k] then
    return nil, ('tax "%s" is listed twice for expenses with different rates'):format(code)
  end
  local t = c.by_code[k]
  if not t then
    return nil, ('no tax "%s" among the account\'s taxes for expenses (obsolete ones do not count)')
      :format(code)
  end
  return t.TaxRate
end

local REFS = {
  Products = { code = "ProductCode", filter = "productCode", noun = "product" },
  Suppliers = { code = "SupplierCode", filter = "supplierCode", noun = "supplier" },
}

-- The record of a product or supplier named by Guid (GET /Products/{Guid})
-- or by code (GET /Products?productCode=...; the filter is not relied on
-- for an exact match: the answer is scanned for the code, case-insensitive,
-- as the server matches codes). Found records are cached per client; nil
-- when the account has none (not cached: it may be added).
local function find_ref(client, resource, ref)
  local spec = REFS[resource]
  local c = cache(client, resource)
  c.by_guid, c.by_code = c.by_guid or {}, c.by_code or {}
  local function index(item)
    if type(item) ~= "table" then return end
    if type(item.Guid) == "string" then c.by_guid[item.Guid:lower()] = item end
    if type(item[spec.code]) == "string" then c.by_code[item[spec.code]:lower()] = item end
  end
  local g = type(ref.Guid) == "string" and ref.Guid:lower() ~= ZERO_GUID and ref.Guid:lower() or nil
  local code = type(ref[spec.code]) == "string" and ref[spec.code]:lower() or nil
  if g then
    if c.by_guid[g] then return c.by_guid[g] end
    local ok, v = client:_try("GET", "/" .. resource .. "/" .. ref.Guid)
    if not ok then
      if v.kind == "not_found" then return nil end
      error(v, 0)
    end
    local found = type(v) == "table" and (type(v.Guid) == "string" and v
      or (type(v.Items) == "table" and v.Items[1])) or nil
    index(found)
    return found
  end
  if not code then return nil end
  if c.by_code[code] then return c.by_code[code] end
  -- The API's largest page, whatever the client's page_size: fewest calls.
  for item in client:each(resource, { [spec.filter] = ref[spec.code] }, { page_size = 1000 }) do
    index(item)
    if type(item) == "table" and type(item[spec.code]) == "string" and item[spec.code]:lower() == code then
      return item
    end
  end
  return nil
end

-- The problem for a reference the account does not have, naming the value.
local function unknown_ref(resource, ref, field)
  local spec = REFS[resource]
  local g = type(ref.Guid) == "string" and ref.Guid or nil
  if g and g:lower() ~= ZERO_GUID then
    return { field = field .. ".Guid", message = ('no %s with Guid "%s"'):format(spec.noun, g) }
  end
  if type(ref[spec.code]) == "string" then
    return { field = field .. "." .. spec.code, message = ('no %s "%s"'):format(spec.noun, ref[spec.code]) }
  end
  return { field = field .. ".Guid", message = "the all-zero Guid names no " .. spec.noun }
end

-- Step 1: the product's purchase tax, or nil (none given) and a problem
-- message when it names a code the account cannot price.
local function product_rate(client, prod)
  if type(prod) ~= "table" then return nil end
  if prod.TaxablePurchase == false then return 0 end
  if type(prod.XeroTaxRate) == "number" then return prod.XeroTaxRate end
  if type(prod.XeroTaxCode) == "string" and prod.XeroTaxCode ~= "" then
    local rate, why = rate_of_code(client, prod.XeroTaxCode)
    if not rate then
      return nil, ('product "%s" has purchase tax "%s": %s'):format(tostring(prod.ProductCode),
        prod.XeroTaxCode, why)
    end
    return rate
  end
  return nil
end

-- Step 2: the order's own tax. A body sent to create: TaxCode, Tax.TaxCode,
-- Tax.TaxRate, TaxRate. An order read from the server: its TaxRate and
-- Tax.TaxRate already are the rate (its TaxCode may be a code such as NONE
-- that needs no listing). Returns the rate, or nil; or nil, field, why.
local function order_rate(client, order, from_server)
  local tax = type(order.Tax) == "table" and order.Tax or {}
  if from_server then
    if type(order.TaxRate) == "number" then return order.TaxRate end
    if type(tax.TaxRate) == "number" then return tax.TaxRate end
  end
  for _, c in ipairs{ { order.TaxCode, "TaxCode" }, { tax.TaxCode, "Tax.TaxCode" } } do
    if type(c[1]) == "string" and c[1] ~= "" then
      local rate, why = rate_of_code(client, c[1])
      if not rate then return nil, c[2], why end
      return rate
    end
  end
  if type(tax.TaxRate) == "number" then return tax.TaxRate end
  if type(order.TaxRate) == "number" then return order.TaxRate end
  return nil
end

-- Step 3: the supplier's record.
local function supplier_rate(sup)
  if type(sup) ~= "table" then return nil end
  if sup.Taxable == false then return 0 end
  if type(sup.TaxRate) == "number" then return sup.TaxRate end
  return nil
end

-- Step 4: the client's option. Returns the rate, or nil; or nil and why.
local function default_rate(client)
  local d = client._default_purchase_tax
  if type(d) == "number" then return d end
  if type(d) == "string" then
    local rate, why = rate_of_code(client, d)
    if not rate then return nil, why end
    return rate
  end
  return nil
end

local function memo(fn)
  local done, a, b, c = false, nil, nil, nil
  return function()
    if not done then
      a, b, c = fn()
      done = true
    end
    return a, b, c
  end
end

-- Fills each line's LineTotal, or checks a given one: no look-up needed.
local function line_totals(lines, field, problems)
  for i, line in ipairs(lines) do
    local expected
    if line.OrderQuantity ~= nil and (line.UnitPrice ~= nil or line.LineTotal == nil) then
      expected = arithmetic.line_total(line.OrderQuantity, line.UnitPrice or 0, line.DiscountRate)
    end
    if line.LineTotal == nil then
      line.LineTotal = expected
    elseif expected and not arithmetic.same_cents(expected, line.LineTotal) then
      problems[#problems + 1] = { field = field(i) .. ".LineTotal",
        message = ("must equal round2(OrderQuantity x UnitPrice x (1 - DiscountRate)) = %.2f")
          :format(expected) }
    end
  end
end

-- Fills the LineTax of lines without one, by the hierarchy. `ctx`: client;
-- field(i) the line's field path; product(i) its product record (nil when
-- unknown); order() step 2; supplier() the supplier's record; skip (lines
-- not to price); problems; unpriced (lines none of the steps priced).
local function line_taxes(ctx, lines)
  local client, problems = ctx.client, ctx.problems
  ctx.reported = ctx.reported or {}
  local function report(field, message)
    if field and not ctx.reported[field .. message] then
      ctx.reported[field .. message] = true
      problems[#problems + 1] = { field = field, message = message }
    end
  end
  ctx.report = report
  for i, line in ipairs(lines) do
    local field = ctx.field(i)
    if line.LineTax == nil and line.LineTotal ~= nil and not ctx.skip[i] then
      local rate, why = product_rate(client, ctx.product(i))
      if why then report(field .. ".Product", why) end
      if rate == nil and not why then
        local f
        rate, f, why = ctx.order()
        if f then report(f, why) end
        if rate == nil and not f then
          rate = supplier_rate(ctx.supplier())
          if rate == nil then
            rate, why = default_rate(client)
            if why then report("default_purchase_tax", why) end
          end
        end
      end
      if rate ~= nil then
        line.LineTax = arithmetic.line_tax(line.LineTotal, rate)
      elseif not why then
        ctx.unpriced[#ctx.unpriced + 1] = i
      end
    end
  end
end

-- The problem of lines with nothing to price them from: one per line, and
-- the ways to fix it. Returns the summary for the error.
local function unpriced_problems(ctx, lines)
  local names = {}
  local sup = ctx.supplier()
  local sup_name = type(sup) == "table" and sup.SupplierCode or "the supplier"
  for _, i in ipairs(ctx.unpriced) do
    local prod = ctx.product(i)
    local code = type(prod) == "table" and prod.ProductCode
      or type(lines[i].Product) == "table" and (lines[i].Product.ProductCode or lines[i].Product.Guid)
    names[#names + 1] = ctx.field(i)
    ctx.problems[#ctx.problems + 1] = { field = ctx.field(i) .. ".LineTax", message = (
      'no tax rate: product "%s" has no purchase tax (XeroTaxCode, XeroTaxRate, TaxablePurchase), the order '
      .. 'has no TaxCode, Tax or TaxRate, supplier "%s" has no TaxRate and is not marked untaxed, and the '
      .. 'client has no default_purchase_tax'):format(tostring(code), tostring(sup_name)) }
  end
  local fix = "give each of these lines a LineTax, or the order a TaxCode (or Tax, TaxRate), or the client "
    .. 'the option default_purchase_tax (the account\'s default purchase tax: a code such as "G.S.T." or a '
    .. "rate such as 0.15)"
  ctx.problems[#ctx.problems + 1] = { field = "default_purchase_tax", message = fix }
  return "no tax rate for " .. table.concat(names, ", ") .. ": " .. fix
end

-- Which unit a quantity is in (docs/reference.md, "Quantities and units"):
-- a line read back has OrderQuantity and ReceiptQuantity in the product's
-- base unit, PurchaseUnitOrderQuantity and PurchaseUnitReceiptQuantity in
-- the line's UnitOfMeasure. On a POST the server reads OrderQuantity "in the
-- purchasing unit if UnitOfMeasure is provided" (the seed). So a new line
-- that carries PurchaseUnit* quantities (a line read back and sent again)
-- is sent with those as its quantities, in its UnitOfMeasure; without a
-- UnitOfMeasure the two must agree (the base unit is then the line's).
local UNIT_PAIRS = { { "OrderQuantity", "PurchaseUnitOrderQuantity" },
                     { "ReceiptQuantity", "PurchaseUnitReceiptQuantity" } }

local function positive_quantity(v, field, problems, zero_ok)
  local finite = type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
  if not finite or v < 0 or (v == 0 and not zero_ok) then
    problems[#problems + 1] = { field = field, message = zero_ok and "must be a number of 0 or more"
      or "must be a number greater than 0" }
    return nil
  end
  return arithmetic.round4(v)
end

-- Pending batch and serial numbers go out under the JSON names of the
-- seed's request tables, Number and Identifier, also when given as they
-- read back (BatchNumber, SerialNumber); CreatedOn is the server's.
local function pending_json_names(line)
  for _, b in ipairs(type(line.PendingBatchNumbers) == "table" and line.PendingBatchNumbers or {}) do
    if type(b) == "table" then
      if b.Number == nil then b.Number = b.BatchNumber end
      b.BatchNumber, b.CreatedOn = nil, nil
    end
  end
  for _, sn in ipairs(type(line.PendingSerialNumbers) == "table" and line.PendingSerialNumbers or {}) do
    if type(sn) == "table" then
      if sn.Identifier == nil then sn.Identifier = sn.SerialNumber end
      sn.SerialNumber, sn.CreatedOn = nil, nil
    end
  end
end

local function new_line_quantities(line, field, problems)
  pending_json_names(line)
  for k, pair in ipairs(UNIT_PAIRS) do
    local base, own = pair[1], pair[2]
    if line[own] ~= nil then
      local q = positive_quantity(line[own], field .. "." .. own, problems, k == 2)
      if q then
        if type(line.UnitOfMeasure) ~= "table" and line[base] ~= nil
            and not arithmetic.same_quantity(line[base], q) then
          problems[#problems + 1] = { field = field .. "." .. own, message = ("is %s but %s is %s, and the "
            .. "line has no UnitOfMeasure to say which unit %s is in: give the UnitOfMeasure, or only %s")
            :format(arithmetic.quantity_text(q), base, arithmetic.quantity_text(line[base]), own, base) }
        end
        line[base] = q
      end
    end
  end
end

-- SubTotal, TaxTotal and Total from the lines: filled when absent, checked
-- when given.
local function order_totals(body, lines, problems)
  local sub, tax = arithmetic.totals(lines)
  for name, want in pairs{ SubTotal = sub, TaxTotal = tax } do
    if body[name] == nil then body[name] = want
    elseif not arithmetic.same_cents(body[name], want) then
      problems[#problems + 1] = { field = name, message = ("must equal the sum of the lines' %s = %.2f")
        :format(name == "SubTotal" and "LineTotal" or "LineTax", want) }
    end
  end
  local _, _, want_total = arithmetic.totals{ { LineTotal = body.SubTotal, LineTax = body.TaxTotal } }
  if body.Total == nil then
    body.Total = want_total
  elseif not arithmetic.same_cents(body.Total, want_total) then
    problems[#problems + 1] = { field = "Total",
                                message = ("must equal SubTotal + TaxTotal = %.2f"):format(want_total) }
  end
end

local function sorted(problems)
  table.sort(problems, function(a, b) return a.field < b.field end)
  return problems
end

-- Fills what the server requires and can be derived: line numbers, line
-- totals and taxes, SubTotal, TaxTotal, Total; checks given figures. What
-- needs no look-up is checked first, and refused without a request. Then
-- the supplier and every product are looked up, so that every unknown one
-- is reported at once, and the lines without LineTax are priced. Returns
-- the problems and a summary for the error (nil: "invalid purchase order").
local function fill_order(client, body)
  local lines = body.PurchaseOrderLines or {}
  local problems = {}
  local function field(i) return "PurchaseOrderLines[" .. i .. "]" end
  local next_number = 0
  for _, line in ipairs(lines) do
    local n = math.tointeger(line.LineNumber)
    if n and n > next_number then next_number = n end
  end
  local all_taxed = true
  for i, line in ipairs(lines) do
    if line.LineNumber == nil then
      next_number = next_number + 1
      line.LineNumber = next_number
    end
    new_line_quantities(line, field(i), problems)
    if line.LineTax == nil then all_taxed = false end
  end
  line_totals(lines, field, problems)
  if all_taxed then order_totals(body, lines, problems) end
  if #problems > 0 then return sorted(problems) end

  local unknown = {}
  local sup
  if type(body.Supplier) == "table" then
    sup = find_ref(client, "Suppliers", body.Supplier)
    if not sup then unknown[#unknown + 1] = unknown_ref("Suppliers", body.Supplier, "Supplier") end
  end
  local products, skip = {}, {}
  for i, line in ipairs(lines) do
    if type(line.Product) == "table" then
      products[i] = find_ref(client, "Products", line.Product)
      if not products[i] then
        unknown[#unknown + 1] = unknown_ref("Products", line.Product, field(i) .. ".Product")
        skip[i] = true
      end
    end
  end
  for _, p in ipairs(unknown) do problems[#problems + 1] = p end
  local ctx = {
    client = client, problems = problems, unpriced = {}, skip = skip, field = field,
    product = function(i) return products[i] end,
    order = memo(function() return order_rate(client, body, false) end),
    supplier = function() return sup end,
  }
  -- An order's tax code is checked whether or not a line needs it: the
  -- server reads it either way.
  line_taxes(ctx, lines)
  if type(body.TaxCode) == "string" or (type(body.Tax) == "table" and type(body.Tax.TaxCode) == "string") then
    local _, f, why = ctx.order()
    if f then ctx.report(f, why) end
  end
  local summary
  if #unknown > 0 then
    local names = {}
    for i, p in ipairs(unknown) do names[i] = p.message:gsub("^no ", "") end
    summary = "unknown " .. table.concat(names, ", ")
  end
  if #ctx.unpriced > 0 then
    local s = unpriced_problems(ctx, lines)
    summary = summary and (summary .. "; " .. s) or s
  end
  if #problems == 0 and not all_taxed then order_totals(body, lines, problems) end
  return sorted(problems), summary
end

-- ---- create -----------------------------------------------------------------

local function ref_matches(a, b, code_field)
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  if a.Guid and b.Guid then return a.Guid:lower() == b.Guid:lower() end
  if a[code_field] and b[code_field] then return a[code_field]:lower() == b[code_field]:lower() end
  return true
end

-- Whether an order found under our GUID is the one we sent: same supplier,
-- same lines (product and quantity), in order.
local function same_order(found, body)
  if not ref_matches(found.Supplier, body.Supplier, "SupplierCode") then return false end
  local a, b = found.PurchaseOrderLines or {}, body.PurchaseOrderLines or {}
  if #a ~= #b then return false end
  table.sort(a, function(x, y) return (x.LineNumber or 0) < (y.LineNumber or 0) end)
  for i, line in ipairs(b) do
    local got = a[i]
    if not ref_matches(got.Product, line.Product, "ProductCode") then return false end
    if not arithmetic.same_cents(got.LineTotal or 0, line.LineTotal or 0) then return false end
  end
  return true
end

local function is_already_exists(e)
  if not Error.is(e) or (e.kind ~= "conflict" and e.kind ~= "validation") then return false end
  for _, d in ipairs(e.details) do
    if d.message:lower():find("already exists", 1, true) then return true end
  end
  return false
end

-- Looks the GUID up after a create's ambiguous outcome. A GET is safe to
-- repeat: one cut or spoiled on the way (kinds network, timeout, server,
-- protocol) is sent again, a few times. Returns ok, the order (nil for none)
-- or the last error.
function Resource:_find_retrying(g)
  local tries = math.max(3, self.client.max_retries + 1)
  local err
  for _ = 1, tries do
    local ok, found = pcall(self._find, self, g)
    if ok then return true, found end
    if not Error.is_ambiguous(found) then return false, found end
    err = found
  end
  return false, err
end

-- The kind of the first attempt that failed ambiguously (a lost or cut
-- response, a 5xx), from the core's per-attempt record: what a retried
-- create's "already exists" followed.
local function first_ambiguous_kind(res)
  for _, ev in ipairs(type(res) == "table" and type(res.events) == "table" and res.events or {}) do
    local kind = ev.kind
    if kind == nil and type(ev.status) == "number" then
      if ev.status >= 500 and ev.status <= 599 then kind = "server"
      elseif ev.status == 408 then kind = "timeout" end
    end
    if kind == "network" or kind == "timeout" or kind == "server" or kind == "protocol" then return kind end
  end
  return nil
end

--- purchase_orders:create(order) -> order as the server stored it.
function Resource:create(t)
  local body, problems = validate.order(t, "post")
  raise_problems("invalid purchase order", problems, "POST", BASE)
  body.Guid = body.Guid or guid.new()
  local path = order_path(body.Guid)
  local summary
  problems, summary = fill_order(self.client, body)
  raise_problems(summary or "invalid purchase order", problems, "POST", path)

  local res = self.client:_send("POST", path, { body = body, idempotent = true })
  local e = Error.from_response(res, "POST", path, { create = true })
  if not e then
    -- A 2xx whose body is cut or not an order is a protocol failure: the
    -- order was most likely stored, and the lookup below finds it.
    local ok, v = pcall(function()
      return expect_order(client_mod.decode_body(res, "POST", path), res, "POST", path)
    end)
    if ok then return setmetatable(v, self._order_mt) end
    if not Error.is(v) then error(v, 0) end
    e = v
  end
  if not (Error.is_ambiguous(e) or is_already_exists(e)) then error(e, 0) end
  -- The order may exist (a lost response, or an earlier attempt of this
  -- create): look the GUID up.
  local found_ok, found = self:_find_retrying(body.Guid)
  if found_ok and found then
    if same_order(found, body) then return found end
    e.kind = "conflict"
    e.message = "a different purchase order with Guid " .. body.Guid .. " already exists"
    table.insert(e.details, 1, { field = "Guid", message = e.message })
    error(e, 0)
  end
  e.guid = body.Guid
  if not found_ok and e.kind == "conflict" then
    -- "Already exists" and no answer to the lookup: whether it is this order
    -- is unknown, which is not the conflict the kind promises (a different
    -- order under the GUID). The outcome stays ambiguous.
    e.kind = first_ambiguous_kind(res) or (Error.is_ambiguous(found) and found.kind) or "network"
  end
  local why = found_ok and "no order was found under it"
    or ("looking it up failed too: " .. tostring(found.message or found))
  e.details[#e.details + 1] = { field = "Guid", message = "the order may exist (" .. why
    .. "); retry the create with Guid " .. body.Guid .. " to find it or create it exactly once" }
  error(e, 0)
end

-- ---- the PurchaseOrder object -----------------------------------------------

local function self_guid(po)
  local g = rawget(po, "Guid")
  if not guid.valid(g) then
    Error.raise_validation("invalid purchase order",
      { { field = "Guid", message = "the object has no valid Guid" } })
  end
  return g
end


-- Reads the order back and replaces the object's fields.
function Order:refresh()
  local client = client_of(self)
  local path = order_path(self_guid(self))
  local v, res = client:_call("GET", path)
  replace(self, expect_order(v, res, "GET", path))
  return self
end

-- Applies a method's answer: the order itself, or (for answers that are not
-- the order, such as an empty body) a fresh read.
local function absorb(po, v)
  if is_order(v) and v.Guid:lower() == po.Guid:lower() and v.OrderStatus ~= nil then
    replace(po, v)
  else
    po:refresh()
  end
  return po
end

local PUT_NOT_ALLOWED = {
  PurchaseOrderLines = "cannot be changed by update: use add_line, update_line and delete_line",
  Currency = "cannot be changed after the order is created",
  Guid = "cannot be changed", OrderNumber = "cannot be changed",
  SubTotal = "is computed by the server from the lines",
  TaxTotal = "is computed by the server from the lines",
  Total = "is computed by the server from the lines", ReceivedDate = "is set by receipt()",
  Tax = "cannot be changed by update: use TaxCode",
}

--- po:update(fields): PUT /PurchaseOrders/{guid}; the object then holds
-- what the server returned.
function Order:update(fields)
  local client = client_of(self)
  local g = self_guid(self)
  local path = order_path(g)
  if type(fields) ~= "table" then
    Error.raise_validation("invalid update", { { field = "fields", message = "must be a table" } },
      "PUT", path)
  end
  local body, problems = validate.order(fields, "put")
  for k in pairs(fields) do
    if PUT_NOT_ALLOWED[k] then problems[#problems + 1] = { field = k, message = PUT_NOT_ALLOWED[k] } end
  end
  local status = fields.OrderStatus or self.OrderStatus
  if validate.NEEDS_LINES[status] and #(self.PurchaseOrderLines or {}) == 0 and fields.OrderStatus then
    problems[#problems + 1] = { field = "OrderStatus",
                                message = "the order needs at least one line to be " .. status }
  end
  table.sort(problems, function(a, b) return a.field < b.field end)
  raise_problems("invalid update", problems, "PUT", path)
  -- PUT requires OrderStatus and Supplier: unchanged ones are sent as they are.
  body.OrderStatus = body.OrderStatus or self.OrderStatus
  if body.Supplier == nil and type(self.Supplier) == "table" then
    body.Supplier = { Guid = self.Supplier.Guid, SupplierCode = self.Supplier.Guid == nil
      and self.Supplier.SupplierCode or nil }
  end
  local v = client:_call("PUT", path, { body = body })
  return absorb(self, v)
end

local function find_line(po, line_guid)
  for i, line in ipairs(po.PurchaseOrderLines or {}) do
    if type(line.Guid) == "string" and line.Guid:lower() == line_guid:lower() then return line, i end
  end
  return nil
end

--- po:add_line(line) -> the new line (as the server stored it).
-- The client chooses the line's Guid and LineNumber and fills LineTotal and
-- LineTax; the POST is then safe to retry.
function Order:add_line(line)
  local client = client_of(self)
  local g = self_guid(self)
  local path = order_path(g) .. "/Lines"
  local body, problems = validate.line(line, "post")
  raise_problems("invalid line", problems, "POST", path)
  body.Guid = body.Guid or guid.new()
  if body.LineNumber == nil then
    local max = 0
    for _, l in ipairs(self.PurchaseOrderLines or {}) do
      local n = math.tointeger(l.LineNumber)
      if n and n > max then max = n end
    end
    body.LineNumber = max + 1
  end
  problems = {}
  new_line_quantities(body, "line", problems)
  line_totals({ body }, function() return "line" end, problems)
  raise_problems("invalid line", sorted(problems), "POST", path)
  local prod, unknown
  if type(body.Product) == "table" then
    prod = find_ref(client, "Products", body.Product)
    if not prod then
      unknown = unknown_ref("Products", body.Product, "line.Product")
      problems[#problems + 1] = unknown
    end
  end
  local ctx = {
    client = client, problems = problems, unpriced = {}, skip = { unknown ~= nil },
    field = function() return "line" end, product = function() return prod end,
    order = memo(function() return order_rate(client, self, true) end),
    supplier = memo(function()
      return type(self.Supplier) == "table" and find_ref(client, "Suppliers", self.Supplier) or nil
    end),
  }
  line_taxes(ctx, { body })
  local what = unknown and ("unknown " .. unknown.message:gsub("^no ", "")) or "invalid line"
  if #ctx.unpriced > 0 then what = unpriced_problems(ctx, { body }) end
  table.sort(problems, function(a, b) return a.field < b.field end)
  raise_problems(what, problems, "POST", path)
  local ok, v = client:_try("POST", path, { body = body, idempotent = true }, { create = true })
  if not ok and not (Error.is_ambiguous(v) or is_already_exists(v)) then error(v, 0) end
  if ok then absorb(self, v) else self:refresh() end
  local stored = find_line(self, body.Guid)
  if not stored then
    if not ok then error(v, 0) end
    error(Error.protocol("the server's answer does not hold the new line " .. body.Guid, "POST", path), 0)
  end
  return stored
end

--- po:update_line(line_guid, fields) -> the line as stored. Fields not given
-- keep their values; LineTotal and LineTax are recomputed when not given.
-- Quantities are in the units a line reads back with: OrderQuantity and
-- ReceiptQuantity in the product's base unit, PurchaseUnitOrderQuantity and
-- PurchaseUnitReceiptQuantity in the line's UnitOfMeasure; so a quantity
-- read and sent back unchanged changes nothing. The PUT carries them in the
-- base unit, without UnitOfMeasure (N/A on a PUT), and LineTotal in the
-- line's unit.
function Order:update_line(line_guid, fields)
  local client = client_of(self)
  local g = self_guid(self)
  check_guid(line_guid, "line_guid", "PUT")
  local path = order_path(g) .. "/Lines/" .. line_guid
  local body, problems = validate.line(fields, "put_partial", "")
  for _, k in ipairs{ "Product", "UnitOfMeasure", "LineNumber", "Guid", "Volume", "Weight" } do
    if type(fields) == "table" and fields[k] ~= nil then
      problems[#problems + 1] = { field = k, message = "cannot be changed on an existing line" }
    end
  end
  raise_problems("invalid line", problems, "PUT", path)
  local existing = find_line(self, line_guid)
  if not existing then
    self:refresh()
    existing = find_line(self, line_guid)
  end
  if not existing then
    error(Error.new("not_found", "the order has no line " .. line_guid, {
      method = "PUT", path = path,
      details = { { field = "line_guid", message = "no such line in this order" } } }), 0)
  end
  -- Quantities: what to send (base unit) and the order quantity in the
  -- line's unit for the arithmetic.
  local factor = arithmetic.unit_factor(existing)
  local unit = type(existing.UnitOfMeasure) == "table" and existing.UnitOfMeasure.Name or "its unit"
  local line_qty
  for k, pair in ipairs(UNIT_PAIRS) do
    local base, own = pair[1], pair[2]
    local q_own
    if fields[own] ~= nil then
      q_own = positive_quantity(fields[own], own, problems, k == 2)
      if q_own then
        local as_base = arithmetic.to_base_unit(q_own, factor)
        if body[base] ~= nil and not arithmetic.same_quantity(body[base], as_base) then
          problems[#problems + 1] = { field = own, message = ("is %s %s, which is %s in the product's base "
            .. "unit, but %s is %s"):format(arithmetic.quantity_text(q_own), unit,
            arithmetic.quantity_text(as_base), base, arithmetic.quantity_text(body[base])) }
        end
        body[base] = as_base
      end
    elseif body[base] ~= nil then
      q_own = arithmetic.to_line_unit(body[base], factor)
      if not q_own then
        problems[#problems + 1] = { field = base, message = ("is in the product's base unit (as the line "
          .. "reads back), and %s is not a quantity of the line's unit %s (%s base units each) to 4 "
          .. "places: give a multiple of %s, or %s in %s"):format(arithmetic.quantity_text(body[base]), unit,
          arithmetic.quantity_text(factor), arithmetic.quantity_text(factor), own, unit) }
      end
    end
    body[own] = nil
    if k == 1 then line_qty = q_own end
  end
  raise_problems("invalid line", problems, "PUT", path)
  pending_json_names(body)
  if body.OrderQuantity == nil then
    body.OrderQuantity = existing.OrderQuantity
    line_qty = existing.PurchaseUnitOrderQuantity or existing.OrderQuantity
  end
  if body.UnitPrice == nil then body.UnitPrice = existing.UnitPrice end
  if body.DiscountRate == nil then body.DiscountRate = existing.DiscountRate end
  local recompute = fields.OrderQuantity ~= nil or fields.PurchaseUnitOrderQuantity ~= nil
    or fields.UnitPrice ~= nil or fields.DiscountRate ~= nil
  if body.LineTotal == nil then
    body.LineTotal = arithmetic.line_total(line_qty, body.UnitPrice or 0, body.DiscountRate)
  end
  if body.LineTax == nil then
    if not recompute and fields.LineTotal == nil and existing.LineTax ~= nil then
      body.LineTax = existing.LineTax
    elseif type(existing.LineTaxRate) == "number" then
      -- The server priced this line already: its rate followed the hierarchy.
      body.LineTax = arithmetic.line_tax(body.LineTotal, existing.LineTaxRate)
    else
      local prod = type(existing.Product) == "table" and find_ref(client, "Products", existing.Product) or nil
      local priced = { LineTotal = body.LineTotal }
      local ctx = {
        client = client, problems = problems, unpriced = {}, skip = {},
        field = function() return "line" end, product = function() return prod end,
        order = memo(function() return order_rate(client, self, true) end),
        supplier = memo(function()
          return type(self.Supplier) == "table" and find_ref(client, "Suppliers", self.Supplier) or nil
        end),
      }
      line_taxes(ctx, { priced })
      local what = "invalid line"
      if #ctx.unpriced > 0 then what = unpriced_problems(ctx, { existing }) end
      raise_problems(what, problems, "PUT", path)
      body.LineTax = priced.LineTax
    end
  end
  local v = client:_call("PUT", path, { body = body })
  absorb(self, v)
  return find_line(self, line_guid)
end

--- po:delete_line(line_guid)
function Order:delete_line(line_guid)
  local client = client_of(self)
  local g = self_guid(self)
  check_guid(line_guid, "line_guid", "DELETE")
  local path = order_path(g) .. "/Lines/" .. line_guid
  local ok, v = client:_try("DELETE", path)
  if not ok then
    -- A retried DELETE whose first attempt took effect answers 404.
    if v.kind == "not_found" and (v.attempts or 1) > 1 then
      self:refresh()
      if not find_line(self, line_guid) then return self end
    end
    error(v, 0)
  end
  absorb(self, v)
  return self
end

-- Receipt and Complete: POSTs that are not idempotent. After an ambiguous
-- failure the order is always read back (on the last try too): if it reached
-- the status the step took effect; otherwise it is tried again, up to the
-- client's retry budget. A 429 was refused unprocessed, and the core does not
-- resend a POST that reached the server: the step waits as the server asks
-- (Retry-After, else the backoff) and sends it again, unless the wait exceeds
-- retry_cap, when the rate_limited error is raised at once with its
-- retry_after, as the core does for its own calls.
local function step(po, name, target_statuses)
  local client = client_of(po)
  local path = order_path(self_guid(po)) .. "/" .. name
  local tries = 0
  while true do
    tries = tries + 1
    local ok, v = client:_try("POST", path, { idempotent = false })
    if ok then return absorb(po, v) end
    if v.kind == "rate_limited" then
      local cap = client._retry_cap
      local wait = v.retry_after
      if wait == nil then
        wait = math.min(cap, client._retry_base * 2 ^ (tries - 1)) * math.random()
      end
      if tries > client.max_retries or wait > cap then error(v, 0) end
      client_mod.sleep(wait)
    elseif Error.is_ambiguous(v) then
      local rok, rerr = pcall(po.refresh, po)
      if rok and target_statuses[po.OrderStatus] then return po end
      if not rok then
        v.details[#v.details + 1] = { message = "reading the order back failed too ("
          .. tostring(Error.is(rerr) and rerr.message or rerr) .. "): the " .. name:lower()
          .. " may have taken effect" }
        error(v, 0)
      end
      if tries > client.max_retries then error(v, 0) end
    else
      error(v, 0)
    end
  end
end

--- po:place(): PUT /PurchaseOrders/{guid} with OrderStatus Placed (the API
-- has no step of its own for it; a PUT is safe to repeat).
function Order:place()
  return self:update{ OrderStatus = "Placed" }
end

--- po:receipt(): POST .../Receipt
function Order:receipt()
  return step(self, "Receipt", { Receipted = true, Costed = true, Complete = true })
end

--- po:complete(): POST .../Complete
function Order:complete()
  return step(self, "Complete", { Complete = true })
end

--- po:delete(): DELETE /PurchaseOrders/{guid}; the object then holds the
-- deleted order as the server shows it (OrderStatus "Deleted").
function Order:delete()
  local client = client_of(self)
  local path = order_path(self_guid(self))
  local ok, v = client:_try("DELETE", path)
  if not ok then
    if not (v.kind == "not_found" and (v.attempts or 1) > 1) then error(v, 0) end
    v = nil
  end
  if is_order(v) then
    replace(self, v)
  else
    local rok = pcall(self.refresh, self)
    if not rok then self.OrderStatus = "Deleted" end
  end
  return self
end

--- po:costs() -> array of the order's costs.
function Order:costs()
  local client = client_of(self)
  local path = order_path(self_guid(self)) .. "/Costs"
  local v, res = client:_call("GET", path)
  if type(v) == "table" and type(v.Items) == "table" then return v.Items end
  if type(v) == "table" and (#v > 0 or next(v) == nil) then return v end
  if v == nil then return {} end
  error(Error.protocol("the response is not a list of costs", "GET", path, res), 0)
end

M.Order = Order
M.fill_order = fill_order
return M
