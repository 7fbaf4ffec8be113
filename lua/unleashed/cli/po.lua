-- `unleashed po ...`: the purchase-order verbs. Each takes the context
-- (ctx: stdout, stderr, getenv, help, ...) and its arguments, and returns the
-- exit code; failures are raised (usage errors, unleashed.Error values).
local flags = require "unleashed.cli.flags"
local format = require "unleashed.cli.format"
local csv = require "unleashed.cli.csv"
local connect = require "unleashed.cli.connect"
local progress = require "unleashed.cli.progress"
local order_file = require "unleashed.cli.order_file"

local usage_error = flags.usage_error
local amount, field = format.amount, format.field

local M = {}

-- ---- shared ---------------------------------------------------------------------

local function currency(po)
  return field(po, "Currency.CurrencyCode")
end

-- "12.50 NZD": an amount with its currency, when the order names one.
local function money(po, v)
  if v == nil then return nil end
  local ccy = currency(po)
  return amount(v) .. (ccy and (" " .. ccy) or "")
end

local function json_text(v)
  return require("unleashed").json.encode(v)
end

local function check_format(value, allowed, topic)
  return flags.choice(value or allowed[1], allowed, "format", topic)
end

-- Parses a verb that names one order: its flags, then exactly one ORDER.
local function one_order(args, topic, extra)
  local opts, pos = flags.parse(args, extra or {}, topic)
  if opts.help then return opts end
  if #pos == 0 then usage_error("missing ORDER (a GUID or an order number)", topic) end
  if #pos > 1 then usage_error(("unexpected argument %q"):format(pos[2]), topic) end
  return opts, pos[1]
end

-- The order a reference names: one call, by GUID or by order number.
local function find(client, ref)
  return client.purchase_orders:get(ref)
end

-- ---- po list -----------------------------------------------------------------------

local LIST_COLUMNS = {
  { "OrderNumber", "OrderNumber" },
  { "Guid", "Guid" },
  { "OrderStatus", "OrderStatus" },
  { "SupplierCode", "Supplier.SupplierCode" },
  { "SupplierName", "Supplier.SupplierName" },
  { "WarehouseCode", "Warehouse.WarehouseCode" },
  { "OrderDate", "OrderDate" },
  { "DeliveryDate", "DeliveryDate" },
  { "Currency", "Currency.CurrencyCode" },
  { "SubTotal", "SubTotal", "money" },
  { "TaxTotal", "TaxTotal", "money" },
  { "Total", "Total", "money" },
  { "SupplierRef", "SupplierRef" },
  { "Comments", "Comments" },
}
M.LIST_COLUMNS = LIST_COLUMNS

local TABLE_COLUMNS = {
  { "ORDER", "OrderNumber" },
  { "STATUS", "OrderStatus" },
  { "SUPPLIER", "Supplier.SupplierCode" },
  { "WAREHOUSE", "Warehouse.WarehouseCode" },
  { "ORDERED", "OrderDate", "date" },
  { "DELIVERY", "DeliveryDate", "date" },
  { "LINES", "PurchaseOrderLines", "count" },
  { "TOTAL", "Total", "money" },
  { "CCY", "Currency.CurrencyCode" },
}

-- A CSV record of the values at `columns`' paths; amounts at their places.
local function csv_values(row, columns)
  local values = {}
  for c, col in ipairs(columns) do
    local v = field(row, col[2])
    if v ~= nil and col[3] == "money" then v = amount(v)
    elseif v ~= nil and col[3] == "qty" then v = format.quantity(v) end
    values[c] = v
  end
  return values
end

local function write_csv_header(out, columns)
  local header = {}
  for c, col in ipairs(columns) do header[c] = col[1] end
  out:write(csv.record(header))
end

function M.list(ctx, args)
  local topic = "po list"
  local opts, pos = flags.parse(args, { supplier = "value", ["supplier-prefix"] = "value", status = "list",
    since = "value", warehouse = "value", format = "value", ["page-size"] = "value", ["raw-csv"] = "flag" },
    topic)
  if opts.help then return ctx.help(topic) end
  if #pos > 0 then usage_error(("unexpected argument %q"):format(pos[1]), topic) end
  local fmt = check_format(opts.format, { "table", "csv", "json" }, topic)
  if opts["raw-csv"] and fmt ~= "csv" then usage_error("--raw-csv goes with --format csv", topic) end
  local filters = {}
  if opts.supplier and opts["supplier-prefix"] then
    usage_error("give --supplier (one supplier) or --supplier-prefix (codes starting with it), not both",
      topic)
  end
  if opts.supplier then filters.exactSupplierCode = opts.supplier end
  if opts["supplier-prefix"] then filters.supplierCode = opts["supplier-prefix"] end
  if opts.status then filters.orderStatus = flags.statuses(opts.status, topic) end
  if opts.since then filters.modifiedSince = flags.date(opts.since, "since", topic, true) end
  if opts.warehouse then filters.warehouseCode = opts.warehouse end
  local page_size = opts["page-size"] and flags.integer(opts["page-size"], "page-size", 1, 1000, topic)

  local client = connect.client(ctx, opts, topic)
  local out = ctx.stdout
  local bar = ctx.stderr_is_tty() and progress.new(ctx.stderr, { width = ctx.terminal_width }) or nil
  local each_opts = { progress = bar and bar.update or nil, page_size = page_size }
  local rows, count = {}, 0
  local raw = opts["raw-csv"] or false
  if fmt == "csv" then
    write_csv_header(out, LIST_COLUMNS)
  elseif fmt == "json" then
    out:write("[")
  end
  local ok, err = pcall(function()
    for po in client.purchase_orders:each(filters, each_opts) do
      count = count + 1
      if fmt == "csv" then
        out:write(csv.record(csv_values(po, LIST_COLUMNS), #LIST_COLUMNS, raw))
      elseif fmt == "json" then
        out:write(count > 1 and ",\n" or "\n", json_text(po))
      else
        rows[#rows + 1] = po
      end
    end
  end)
  if bar then bar.finish() end
  if not ok then error(err, 0) end
  if fmt == "json" then
    out:write(count > 0 and "\n]\n" or "]\n")
  elseif fmt == "table" then
    format.write_table(out, TABLE_COLUMNS, rows)
    ctx.stderr:write(("%d purchase order%s\n"):format(count, count == 1 and "" or "s"))
  end
  return 0
end

-- ---- po get --------------------------------------------------------------------------

local HEADER_FIELDS = {
  { "Order", "OrderNumber" }, { "Guid", "Guid" }, { "Status", "OrderStatus" },
  { "Custom status", "CustomOrderStatus" },
  { "Supplier", "Supplier.SupplierCode" }, { "Supplier name", "Supplier.SupplierName" },
  { "Warehouse", "Warehouse.WarehouseCode" }, { "Currency", "Currency.CurrencyCode" },
  { "Order date", "OrderDate" }, { "Delivery date", "DeliveryDate" },
  { "Received", "ReceivedDate" }, { "Completed", "CompletedDate" },
  { "Supplier ref", "SupplierRef" }, { "Comments", "Comments" },
  { "Sub total", function(po) return money(po, po.SubTotal) end },
  { "Tax total", function(po) return money(po, po.TaxTotal) end },
  { "Total", function(po) return money(po, po.Total) end },
}

-- A line's quantities in the unit it was ordered in (its UnitOfMeasure, the
-- unit UnitPrice is per), so that QTY x UNIT PRICE reads as LINE TOTAL; then
-- the same order in the product's base unit (OrderQuantity).
local LINE_COLUMNS = {
  { "LINE", "LineNumber", "qty" },
  { "PRODUCT", "Product.ProductCode" },
  { "DESCRIPTION", "Product.ProductDescription" },
  { "QTY", "PurchaseUnitOrderQuantity", "qty" },
  { "UNIT", "UnitOfMeasure.Name" },
  { "RECEIVED", "PurchaseUnitReceiptQuantity", "qty" },
  { "BASE QTY", "OrderQuantity", "qty" },
  { "UNIT PRICE", "UnitPrice", "price" },
  { "LINE TOTAL", "LineTotal", "money" },
  { "TAX", "LineTax", "money" },
}
M.LINE_COLUMNS = LINE_COLUMNS

local function show_order(out, po)
  format.write_fields(out, HEADER_FIELDS, po)
  out:write("\n")
  format.write_table(out, LINE_COLUMNS, po.PurchaseOrderLines or {})
end

function M.get(ctx, args)
  local topic = "po get"
  local opts, ref = one_order(args, topic, { format = "value" })
  if opts.help then return ctx.help(topic) end
  local fmt = check_format(opts.format, { "table", "json" }, topic)
  local client = connect.client(ctx, opts, topic)
  local po = find(client, ref)
  if fmt == "json" then
    ctx.stdout:write(json_text(po), "\n")
  else
    show_order(ctx.stdout, po)
  end
  return 0
end

-- ---- po create -------------------------------------------------------------------------

local function summary(po)
  local lines = po.PurchaseOrderLines or {}
  return ("%s  %s  %d line%s  total %s  %s  (%s)"):format(tostring(po.OrderNumber),
    tostring(field(po, "Supplier.SupplierCode")), #lines, #lines == 1 and "" or "s",
    money(po, po.Total) or "?", tostring(po.OrderStatus), tostring(po.Guid))
end

function M.create(ctx, args)
  local topic = "po create"
  local opts, pos = flags.parse(args, { status = "value", ["dry-run"] = "flag", format = "value" }, topic)
  if opts.help then return ctx.help(topic) end
  if #pos == 0 then usage_error("missing FILE (.json or .csv, or - for stdin)", topic) end
  if #pos > 1 then usage_error(("unexpected argument %q"):format(pos[2]), topic) end
  local fmt = check_format(opts.format, { "table", "json" }, topic)
  local status = opts.status
    and flags.choice(opts.status, { "Parked", "Placed", "Complete" }, "status", topic)
  local source = order_file.read(pos[1], ctx.stdin, topic)
  local client = connect.client(ctx, opts, topic)
  local prepared = order_file.prepare(client, source, status)
  local out = ctx.stdout
  if opts["dry-run"] then
    for _, p in ipairs(prepared) do
      out:write("POST /PurchaseOrders/", p.body.Guid, "\n", format.pretty_json(json_text(p.body)), "\n")
    end
    ctx.stderr:write(("dry run: %d order%s checked and priced, nothing sent\n"):format(#prepared,
      #prepared == 1 and "" or "s"))
    return 0
  end
  local created = {}
  for i, p in ipairs(prepared) do
    local ok, po = pcall(client.purchase_orders.create, client.purchase_orders, p.body)
    if not ok then
      if type(po) == "table" and type(po.details) == "table" then
        local done = {}
        for k, c in ipairs(created) do done[k] = c.OrderNumber end
        po.details[#po.details + 1] = { message = ("%s failed; created before it: %s; not sent: %d"):format(
          p.label, #done > 0 and table.concat(done, ", ") or "none", #prepared - i) }
      end
      error(po, 0)
    end
    created[#created + 1] = po
    if fmt == "table" then out:write("created ", summary(po), "\n") end
  end
  if fmt == "json" then
    local parts = {}
    for k, po in ipairs(created) do parts[k] = json_text(po) end
    out:write("[", #parts > 0 and ("\n" .. table.concat(parts, ",\n") .. "\n") or "", "]\n")
  end
  return 0
end

-- ---- po update, place, delete, receipt, complete -------------------------------------------

local function status_line(out, po, done, extra)
  out:write(("%s %s: status %s%s\n"):format(tostring(po.OrderNumber or po.Guid), done,
    tostring(po.OrderStatus), extra or ""))
end

function M.update(ctx, args)
  local topic = "po update"
  local opts, ref = one_order(args, topic, { status = "value", ["delivery-date"] = "value",
    ["supplier-ref"] = "value", comments = "value", warehouse = "value", ["tax-code"] = "value" })
  if opts.help then return ctx.help(topic) end
  local fields = {}
  if opts.status then
    fields.OrderStatus = flags.choice(opts.status, { "Parked", "Placed", "Costed", "Complete" }, "status",
      topic)
  end
  if opts["delivery-date"] then
    fields.DeliveryDate = flags.date(opts["delivery-date"], "delivery-date", topic)
  end
  if opts["supplier-ref"] then fields.SupplierRef = opts["supplier-ref"] end
  if opts.comments then fields.Comments = opts.comments end
  if opts.warehouse then fields.Warehouse = { WarehouseCode = opts.warehouse } end
  if opts["tax-code"] then fields.TaxCode = opts["tax-code"] end
  if next(fields) == nil then
    usage_error("nothing to change: give --status, --delivery-date, --supplier-ref, --comments, --warehouse "
      .. "or --tax-code", topic)
  end
  local client = connect.client(ctx, opts, topic)
  local po = find(client, ref)
  po:update(fields)
  status_line(ctx.stdout, po, "updated", po.DeliveryDate and (", delivery " .. po.DeliveryDate:sub(1, 10)))
  return 0
end

local ACTIONS = {
  place = { method = "place", done = "placed" },
  delete = { method = "delete", done = "deleted" },
  receipt = { method = "receipt", done = "receipted", when = "ReceivedDate", label = "received" },
  complete = { method = "complete", done = "completed", when = "CompletedDate", label = "completed" },
}

function M.action(ctx, args, name)
  local topic = "po " .. name
  local opts, ref = one_order(args, topic)
  if opts.help then return ctx.help(topic) end
  local action = ACTIONS[name]
  local client = connect.client(ctx, opts, topic)
  local po = find(client, ref)
  po[action.method](po)
  local when = action.when and po[action.when]
  status_line(ctx.stdout, po, action.done, when and (", " .. action.label .. " " .. tostring(when)))
  return 0
end

-- ---- po add-line ------------------------------------------------------------------------

function M.add_line(ctx, args)
  local topic = "po add-line"
  local opts, ref = one_order(args, topic, { product = "value", quantity = "value", price = "value",
    unit = "value", discount = "value", ["delivery-date"] = "value", comments = "value" })
  if opts.help then return ctx.help(topic) end
  for _, name in ipairs { "product", "quantity", "price" } do
    if not opts[name] then usage_error(("missing --%s"):format(name), topic) end
  end
  local line = { Product = { ProductCode = opts.product } }
  line.OrderQuantity = flags.number(opts.quantity, "quantity", 0, math.huge, topic, "a number above 0")
  if line.OrderQuantity <= 0 then
    usage_error(("--quantity: expected a number above 0, got %q"):format(opts.quantity), topic)
  end
  line.UnitPrice = flags.number(opts.price, "price", 0, math.huge, topic, "a number of 0 or more")
  if opts.unit then line.UnitOfMeasure = { Name = opts.unit } end
  if opts.discount then
    line.DiscountRate = flags.number(opts.discount, "discount", 0, 1, topic, "a rate from 0 to 1")
  end
  if opts["delivery-date"] then
    line.DeliveryDate = flags.date(opts["delivery-date"], "delivery-date", topic)
  end
  if opts.comments then line.Comments = opts.comments end
  local client = connect.client(ctx, opts, topic)
  local po = find(client, ref)
  local stored = po:add_line(line)
  ctx.stdout:write(("%s: line %s added: %s  qty %s%s  unit price %s  line total %s  tax %s\n"):format(
    tostring(po.OrderNumber), tostring(stored.LineNumber), tostring(field(stored, "Product.ProductCode")),
    format.quantity(stored.OrderQuantity),
    field(stored, "UnitOfMeasure.Name") and (" " .. field(stored, "UnitOfMeasure.Name")) or "",
    amount(stored.UnitPrice, format.PRICE_PLACES), money(po, stored.LineTotal) or "?",
    money(po, stored.LineTax) or "?"))
  return 0
end

-- ---- po costs ---------------------------------------------------------------------------

local COST_COLUMNS = {
  { "Reference", "Reference" },
  { "SupplierCode", "Supplier.SupplierCode" },
  { "CostDate", "CostDate" },
  { "DistributionMethod", "DistributionMethod" },
  { "Currency", "Currency" },
  { "Cost", "Cost", "money" },
  { "TaxCode", "TaxCode" },
  { "TaxCost", "TaxCost", "money" },
  { "TotalCost", "TotalCost", "money" },
  { "BCCost", "BCCost", "money" },
  { "BCTaxCost", "BCTaxCost", "money" },
  { "BCTotalCost", "BCTotalCost", "money" },
  { "Receipted", "Receipted" },
}
M.COST_COLUMNS = COST_COLUMNS

local COST_TABLE = {
  { "REFERENCE", "Reference" },
  { "SUPPLIER", "Supplier.SupplierCode" },
  { "DATE", "CostDate", "date" },
  { "METHOD", "DistributionMethod" },
  { "COST", "Cost", "money" },
  { "TAX", "TaxCost", "money" },
  { "TOTAL", "TotalCost", "money" },
  { "CCY", "Currency" },
  { "BC TOTAL", "BCTotalCost", "money" },
}

function M.costs(ctx, args)
  local topic = "po costs"
  local opts, ref = one_order(args, topic, { format = "value", ["raw-csv"] = "flag" })
  if opts.help then return ctx.help(topic) end
  local fmt = check_format(opts.format, { "table", "csv", "json" }, topic)
  if opts["raw-csv"] and fmt ~= "csv" then usage_error("--raw-csv goes with --format csv", topic) end
  local client = connect.client(ctx, opts, topic)
  local po = find(client, ref)
  local costs = po:costs()
  local out = ctx.stdout
  if fmt == "json" then
    local parts = {}
    for k, c in ipairs(costs) do parts[k] = json_text(c) end
    out:write("[", #parts > 0 and ("\n" .. table.concat(parts, ",\n") .. "\n") or "", "]\n")
  elseif fmt == "csv" then
    write_csv_header(out, COST_COLUMNS)
    for _, c in ipairs(costs) do
      out:write(csv.record(csv_values(c, COST_COLUMNS), #COST_COLUMNS, opts["raw-csv"] or false))
    end
  else
    format.write_table(out, COST_TABLE, costs)
    ctx.stderr:write(("%d cost%s of %s\n"):format(#costs, #costs == 1 and "" or "s",
      tostring(po.OrderNumber)))
  end
  return 0
end

-- ---- dispatch ------------------------------------------------------------------------------

local SUBCOMMANDS = {
  list = M.list, get = M.get, create = M.create, update = M.update, ["add-line"] = M.add_line,
  costs = M.costs,
  place = function(ctx, args) return M.action(ctx, args, "place") end,
  delete = function(ctx, args) return M.action(ctx, args, "delete") end,
  receipt = function(ctx, args) return M.action(ctx, args, "receipt") end,
  complete = function(ctx, args) return M.action(ctx, args, "complete") end,
}
M.NAMES = { "list", "get", "create", "update", "place", "add-line", "costs", "receipt", "complete", "delete" }

function M.main(ctx, args)
  local sub = args[1]
  if sub == nil or sub == "--help" or sub == "-h" or sub == "help" then
    return ctx.help("po", sub == nil and 2 or 0)
  end
  local fn = SUBCOMMANDS[sub]
  if not fn then
    usage_error(("unknown subcommand %q (%s)"):format(sub, table.concat(M.NAMES, ", ")), "po")
  end
  return fn(ctx, table.move(args, 2, #args, 1, {}))
end

return M
