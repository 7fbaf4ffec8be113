-- The measurement the mirror's SQLite binding was chosen by: 5,000 orders of
-- the sandbox (some 4 KB of JSON and three lines each) written a page of
-- 1,000 per transaction, through the mirror's own write path on
-- unleashed.sqlite (prepared statements, bound values), and through
-- Debian's LuaSQL (lua-sql-sqlite3: no bound parameters, so each row is SQL
-- text with its values escaped). CPU time per order, this process.
-- Prints one line; LuaSQL's half is skipped when it is not installed.
local sandbox = require "unleashed.sandbox"
local json = require "unleashed.json"
local mirror = require "unleashed.mirror"
local changes = require "unleashed.changes"

local N, PAGE = 5000, 1000

local app = sandbox.new{ seed = N }
local texts = {}
for i, o in ipairs(app.orders) do texts[i] = app:order_json(o, true, false) end
local orders = assert(json.decode("[" .. table.concat(texts, ",") .. "]"))

local function tmp()
  local p = os.tmpname()
  os.remove(p)
  return p .. ".sqlite"
end
local function remove_db(p) for _, s in ipairs{ "", "-wal", "-shm" } do os.remove(p .. s) end end

-- The binding, through the mirror's write path.
local path = tmp()
local m = mirror.open(path)
local c0 = os.clock()
for first = 1, N, PAGE do
  m:_write_page(table.move(orders, first, math.min(N, first + PAGE - 1), 1, {}), true)
end
local binding = (os.clock() - c0) / N * 1e6
m:close()
remove_db(path)

local ok, luasql = pcall(require, "luasql.sqlite3")
if not ok then
  print(("SQLite binding: %.0f us of CPU per order written (5,000 orders with lines and JSON); "
    .. "LuaSQL: skipped, lua-sql-sqlite3 is not installed"):format(binding))
  return
end

path = tmp()
local env = luasql.sqlite3()
local conn = assert(env:connect(path))
assert(conn:execute("PRAGMA journal_mode = WAL"))
assert(conn:execute("PRAGMA synchronous = NORMAL"))
for stmt in mirror.SCHEMA:gmatch("[^;]+;") do
  if stmt:find("%S") then assert(conn:execute(stmt)) end
end
local function v(x)
  if x == nil or type(x) == "table" or type(x) == "userdata" then return "NULL" end
  if type(x) == "number" then return ("%.17g"):format(x) end
  if type(x) == "boolean" then return x and "1" or "0" end
  return "'" .. conn:escape(x) .. "'"
end
c0 = os.clock()
for first = 1, N, PAGE do
  assert(conn:execute("BEGIN IMMEDIATE"))
  for i = first, math.min(N, first + PAGE - 1) do
    local o = orders[i]
    local s, w, c = o.Supplier or {}, o.Warehouse or {}, o.Currency or {}
    assert(conn:execute(table.concat({ "INSERT INTO orders (guid, order_number, status, custom_status, "
      .. "supplier_code, supplier_name, warehouse_code, warehouse_name, currency, exchange_rate, order_date, "
      .. "delivery_date, received_date, completed_date, supplier_ref, sub_total, tax_total, total, "
      .. "bc_sub_total, bc_tax_total, bc_total, created_on, last_modified_on, last_modified_ms, json) "
      .. "VALUES (",
      table.concat({ v(o.Guid), v(o.OrderNumber), v(o.OrderStatus), v(o.CustomOrderStatus), v(s.SupplierCode),
        v(s.SupplierName), v(w.WarehouseCode), v(w.WarehouseName), v(c.CurrencyCode), v(o.ExchangeRate),
        v(o.OrderDate), v(o.DeliveryDate), v(o.ReceivedDate), v(o.CompletedDate), v(o.SupplierRef),
        v(o.SubTotal), v(o.TaxTotal), v(o.Total), v(o.BCSubTotal), v(o.BCTaxTotal), v(o.BCTotal),
        v(o.CreatedOn), v(o.LastModifiedOn), v(changes.modified_ms(o)), v(mirror.order_json(o)) }, ","),
      ") ON CONFLICT (guid) DO UPDATE SET json = excluded.json" })))
    assert(conn:execute("DELETE FROM lines WHERE order_guid = " .. v(o.Guid)))
    for _, l in ipairs(o.PurchaseOrderLines or {}) do
      local p = l.Product or {}
      assert(conn:execute("INSERT INTO lines (order_guid, guid, line_number, product_code, "
        .. "product_description, unit, order_quantity, receipt_quantity, unit_price, discount_rate, "
        .. "line_total, line_tax, tax_code, delivery_date, comments) VALUES ("
        .. table.concat({ v(o.Guid), v(l.Guid), v(l.LineNumber), v(p.ProductCode), v(p.ProductDescription),
          v((l.UnitOfMeasure or {}).Name), v(l.OrderQuantity),
          v(l.ReceiptQuantity), v(l.UnitPrice), v(l.DiscountRate), v(l.LineTotal), v(l.LineTax),
          v(l.LineTaxCode), v(l.DeliveryDate), v(l.Comments) }, ",") .. ")"))
    end
  end
  assert(conn:execute("COMMIT"))
end
local luasql_us = (os.clock() - c0) / N * 1e6
conn:close()
env:close()
remove_db(path)
print(("SQLite binding: %.0f us of CPU per order written (5,000 orders with lines and JSON), LuaSQL %.0f us: "
  .. "%.1fx faster"):format(binding, luasql_us, luasql_us / binding))
