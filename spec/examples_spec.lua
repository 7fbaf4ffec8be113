-- The workflows in examples/, each run as a user runs it
-- (`unleashed run examples/X.lua ARGS`) against a sandbox, and checked
-- against what the sandbox holds afterwards.
local sandbox = require "support.sandbox"
local files = require "support.files"
local read_all = files.read_all
local unleashed = require "unleashed"

local ROOT = os.getenv("UNLEASHED_ROOT") or "."

-- One order line of the product every seed has.
local function bolts(qty, price)
  return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = qty, UnitPrice = price }
end
local quote = sandbox.quote

-- Runs `bin/unleashed run examples/NAME ARGS` from the project's root with the
-- sandbox's credentials in the environment.
local function run_example(sb, name, args)
  local words = { "cd", quote(ROOT), "&&", "env", "-u UNLEASHED_PROFILE",
                  "UNLEASHED_API_ID=" .. quote(sb.api_id), "UNLEASHED_API_KEY=" .. quote(sb.api_key),
                  "UNLEASHED_BASE_URL=" .. quote(sb.base_url), "bin/unleashed", "run", "examples/" .. name }
  for _, a in ipairs(args or {}) do words[#words + 1] = quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local _, how, code = os.execute(table.concat(words, " ") .. " </dev/null >" .. quote(out) .. " 2>"
    .. quote(err))
  local r = { code = how == "exit" and code or 128 + code, stdout = read_all(out), stderr = read_all(err) }
  os.remove(out)
  os.remove(err)
  assert.falsy((r.stdout .. r.stderr):find(sb.api_key, 1, true))
  return r
end

local function lines_of(text)
  local t = {}
  for line in text:gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

-- A CSV reader for the checks, apart from the one the examples use: it
-- splits records with a pattern scan over quoted and unquoted runs.
local function read_csv(text)
  local records, rec = {}, {}
  local pos = 1
  while pos <= #text do
    local value
    if text:sub(pos, pos) == '"' then
      local buf, p = {}, pos + 1
      while true do
        local q = assert(text:find('"', p, true), "unterminated quote")
        buf[#buf + 1] = text:sub(p, q - 1)
        if text:sub(q + 1, q + 1) == '"' then
          buf[#buf + 1] = '"'
          p = q + 2
        else
          pos = q + 1
          break
        end
      end
      value = table.concat(buf)
    else
      local stop = text:find("[,\r\n]", pos) or #text + 1
      value = text:sub(pos, stop - 1)
      pos = stop
    end
    rec[#rec + 1] = value
    local sep = text:sub(pos, pos)
    if sep == "," then
      pos = pos + 1
    else
      records[#records + 1] = rec
      rec = {}
      pos = pos + (text:sub(pos, pos + 1) == "\r\n" and 2 or 1)
    end
  end
  local header = table.remove(records, 1)
  local rows = {}
  for i, r in ipairs(records) do
    assert(#r == #header, "record " .. i .. " has " .. #r .. " fields")
    local row = {}
    for k, name in ipairs(header) do row[name] = r[k] end
    rows[i] = row
  end
  return rows, header
end

local function near(a, b) return math.abs((tonumber(a) or 0/0) - b) < 0.005 end

describe("examples", function()
  local sb, client

  before_each(function()
    sb = sandbox.start { seed = 100, admin = true }
    client = unleashed.new { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
  end)

  after_each(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  it("receipt_due.lua receipts the due Placed orders of one supplier, and only those", function()
    local due_by = "2025-06-30"
    -- an ACME2 order due, which a prefix filter would take for ACME's, and an
    -- ACME order due on the day itself ("2025-06-30T00:00:00.000Z")
    for _, code in ipairs { "ACME2", "ACME" } do
      client.purchase_orders:create {
        Supplier = { SupplierCode = code }, OrderStatus = "Placed", DeliveryDate = due_by,
        PurchaseOrderLines = { bolts(1, 1) },
      }
    end
    local due, later = {}, {}
    for po in client.purchase_orders:each { supplierCode = "ACME", orderStatus = "Placed" } do
      if po.Supplier.SupplierCode == "ACME" then
        if po.DeliveryDate:sub(1, 10) <= due_by then due[#due + 1] = po else later[#later + 1] = po end
      end
    end
    local acme2 = client.purchase_orders:list { supplierCode = "ACME2", orderStatus = "Placed" }
    assert.is_true(#due > 0)
    assert.is_true(#later > 0)

    local r = run_example(sb, "receipt_due.lua", { "ACME", due_by })
    assert.equal(0, r.code, r.stderr)
    local out = r.stdout
    local plural = #due == 1 and "" or "s"
    local heading = ("%d Placed order%s from ACME due by %s"):format(#due, plural, due_by)
    assert.truthy(out:find(heading, 1, true), out)
    local total = 0
    for _, po in ipairs(due) do
      assert.truthy(out:find("receipted " .. po.OrderNumber, 1, true), po.OrderNumber)
      local now = sb:json("GET", "/PurchaseOrders/" .. po.Guid)
      assert.equal("Receipted", now.OrderStatus)
      assert.is_string(now.ReceivedDate)
      total = total + po.Total
    end
    assert.truthy(out:find(("total receipted: %.2f NZD"):format(total), 1, true), out)
    assert.truthy(out:find(("receipted %d order%s\n"):format(#due, plural), 1, true))
    for _, po in ipairs(later) do
      assert.equal("Placed", sb:json("GET", "/PurchaseOrders/" .. po.Guid).OrderStatus)
    end
    for _, po in ipairs(acme2) do
      assert.equal("Placed", sb:json("GET", "/PurchaseOrders/" .. po.Guid).OrderStatus)
    end

    -- nothing is due any more
    local again = run_example(sb, "receipt_due.lua", { "ACME", due_by })
    assert.equal(0, again.code)
    assert.truthy(again.stdout:find("receipted 0 orders", 1, true))
  end)

  it("receipt_due.lua refuses a malformed date, exit 1", function()
    local r = run_example(sb, "receipt_due.lua", { "ACME", "30/06/2025" })
    assert.equal(1, r.code)
    assert.truthy(r.stderr:find('DATE: expected YYYY-MM-DD, got "30/06/2025"', 1, true))
  end)

  it("export_open_orders.lua writes a CSV that reads back to the open orders and their lines", function()
    local path = os.tmpname()
    local r = run_example(sb, "export_open_orders.lua", { path })
    assert.equal(0, r.code, r.stderr)
    local rows, header = read_csv(read_all(path))
    os.remove(path)
    assert.equal("OrderNumber", header[1])
    local want = {}
    for _, status in ipairs { "Parked", "Placed" } do
      for _, po in ipairs(client.purchase_orders:list { orderStatus = status }) do want[#want + 1] = po end
    end
    local n, line_count = 0, 0
    for _, po in ipairs(want) do
      local lines = po.PurchaseOrderLines
      for k = 1, math.max(1, #lines) do
        n = n + 1
        local row, line = rows[n], lines[k]
        assert.equal(po.OrderNumber, row.OrderNumber)
        assert.equal(po.Guid, row.OrderGuid)
        assert.equal(po.OrderStatus, row.OrderStatus)
        assert.equal(po.Supplier.SupplierCode, row.SupplierCode)
        assert.equal(po.OrderDate, row.OrderDate)
        assert.is_true(near(row.OrderTotal, po.Total))
        if line then
          line_count = line_count + 1
          assert.equal(tostring(line.LineNumber), row.LineNumber)
          assert.equal(line.Product.ProductCode, row.ProductCode)
          assert.is_true(near(row.OrderQuantity, line.OrderQuantity))
          assert.is_true(near(row.PurchaseUnitOrderQuantity, line.PurchaseUnitOrderQuantity))
          assert.equal(line.UnitOfMeasure and line.UnitOfMeasure.Name or "", row.UnitOfMeasure)
          assert.is_true(math.abs(tonumber(row.UnitPrice) - line.UnitPrice) < 1e-9)
          assert.is_true(near(row.LineTotal, line.LineTotal))
          -- quantities integral as integers, amounts at their places
          for _, q in ipairs { row.OrderQuantity, row.PurchaseUnitOrderQuantity } do
            assert.falsy(q:find("%.0*$"), q)
            assert.falsy(q:find("e", 1, true), q)
          end
          assert.truthy(row.UnitPrice:match("^%d+%.%d%d%d%d+$"), row.UnitPrice)
          assert.truthy(row.LineTotal:match("^%-?%d+%.%d%d+$"), row.LineTotal)
        else
          assert.equal("", row.ProductCode)
        end
      end
    end
    assert.equal(n, #rows)
    assert.is_true(#want > 10)
    local summary = ("exported %d open orders with %d lines to %s"):format(#want, line_count, path)
    assert.truthy(r.stdout:find(summary, 1, true), r.stdout)
  end)

  it("export_open_orders.lua writes the CSV to stdout and its summary to stderr", function()
    local r = run_example(sb, "export_open_orders.lua")
    assert.equal(0, r.code, r.stderr)
    local rows = read_csv(r.stdout)
    assert.is_true(#rows > 10)
    assert.truthy(r.stderr:find("to stdout", 1, true))
  end)

  it("create_from_csv.lua creates one order per supplier, and nothing when run again", function()
    local csv_rows = read_csv(read_all(ROOT .. "/examples/data/reorder.csv"))
    local by_supplier, suppliers = {}, {}
    for _, row in ipairs(csv_rows) do
      if not by_supplier[row.SupplierCode] then
        by_supplier[row.SupplierCode] = {}
        suppliers[#suppliers + 1] = row.SupplierCode
      end
      table.insert(by_supplier[row.SupplierCode], row)
    end
    assert.is_true(#suppliers >= 3)

    sb:reset()
    local first = run_example(sb, "create_from_csv.lua", { "examples/data/reorder.csv", "Placed" })
    assert.equal(0, first.code, first.stderr)
    assert.truthy(first.stdout:find(("%d orders created, 0 already there"):format(#suppliers), 1, true),
      first.stdout)
    local posts = 0
    for call, n in pairs(sb:stats().Calls) do
      if call:match("^POST /PurchaseOrders/") then posts = posts + n end
    end
    assert.equal(#suppliers, posts)

    -- each supplier's order holds its CSV lines
    local guids = {}
    for guid in first.stdout:gmatch("%((%x+%-[%x%-]+)%)") do guids[#guids + 1] = guid end
    assert.equal(#suppliers, #guids)
    for i, code in ipairs(suppliers) do
      local po = sb:json("GET", "/PurchaseOrders/" .. guids[i])
      assert.equal(code, po.Supplier.SupplierCode)
      assert.equal("Placed", po.OrderStatus)
      assert.equal(#by_supplier[code], #po.PurchaseOrderLines)
      for k, row in ipairs(by_supplier[code]) do
        local line = po.PurchaseOrderLines[k]
        assert.equal(row.ProductCode, line.Product.ProductCode)
        assert.is_true(near(row.Quantity, line.OrderQuantity))
        assert.is_true(near(row.UnitPrice, line.UnitPrice))
      end
    end

    sb:reset()
    local second = run_example(sb, "create_from_csv.lua", { "examples/data/reorder.csv", "Placed" })
    assert.equal(0, second.code, second.stderr)
    assert.truthy(second.stdout:find(("0 orders created, %d already there"):format(#suppliers), 1, true))
    for call in pairs(sb:stats().Calls) do
      assert.falsy(call:match("^POST"), call)
    end
    for _, guid in ipairs(guids) do assert.truthy(second.stdout:find(guid, 1, true)) end
    -- still one order per supplier in the sandbox
    for _, code in ipairs(suppliers) do
      local n = 0
      for po in client.purchase_orders:each { supplierCode = code, orderStatus = "Placed" } do
        if po.Comments == "Reorder from reorder.csv" then n = n + 1 end
      end
      assert.equal(1, n, code)
    end
  end)

  it("create_from_csv.lua names the CSV record and product of a line the account refuses", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("SupplierCode,ProductCode,Quantity,UnitPrice\nACME,BOLT M8 #10,1,1\nACME,NO-SUCH-PRODUCT,2,1\n")
    f:close()
    sb:reset()
    local r = run_example(sb, "create_from_csv.lua", { path })
    os.remove(path)
    assert.equal(4, r.code, r.stderr)
    local where = path .. " record 2 (SupplierCode ACME, ProductCode NO-SUCH-PRODUCT)"
    assert.truthy(r.stderr:find(where, 1, true), r.stderr)
    for call in pairs(sb:stats().Calls) do assert.falsy(call:match("^POST"), call) end
  end)

  it("create_from_csv.lua names the record and the rule for a bad quantity", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write("SupplierCode,ProductCode,Quantity,UnitPrice\nACME,BOLT M8 #10,lots,1\n")
    f:close()
    sb:reset()
    local r = run_example(sb, "create_from_csv.lua", { path })
    os.remove(path)
    assert.equal(1, r.code)
    assert.truthy(r.stderr:find('record 1: Quantity must be a number above 0, got "lots"', 1, true), r.stderr)
    assert.equal(0, sb:stats().Total)
  end)

  it("month_end.lua totals a month by supplier and status, with landed costs", function()
    local month = "2025-03"
    local orders = {}
    for po in client.purchase_orders:each { startDate = "2025-02-20", endDate = "2025-04-10" } do
      if po.OrderDate:sub(1, 7) == month then orders[#orders + 1] = po end
    end
    assert.is_true(#orders > 0)
    local r = run_example(sb, "month_end.lua", { month })
    assert.equal(0, r.code, r.stderr)
    local out = r.stdout
    assert.truthy(out:find(("purchase orders for %s: %d\n"):format(month, #orders), 1, true), out)

    local groups = {}
    for _, po in ipairs(orders) do
      local key = po.Supplier.SupplierCode .. "|" .. po.OrderStatus
      local g = groups[key]
        or { n = 0, total = 0, supplier = po.Supplier.SupplierCode, status = po.OrderStatus }
      g.n, g.total = g.n + 1, g.total + po.Total
      groups[key] = g
    end
    local printed = lines_of(out)
    -- no trailing spaces; columns line up by display width (MÜLLER, two bytes for Ü)
    local status_at
    for _, line in ipairs(printed) do
      assert.falsy(line:find("%s$"), "trailing space: " .. line)
      if line:find("^SUPPLIER ") then status_at = utf8.len(line:sub(1, line:find("STATUS", 1, true) - 1)) end
    end
    assert.is_number(status_at)
    for _, g in pairs(groups) do
      for _, line in ipairs(printed) do
        local mine = line:sub(1, #g.supplier + 1) == g.supplier .. " "
        if mine and line:find(" " .. g.status .. " ", 1, true) then
          local at = line:find(" " .. g.status .. " ", #g.supplier, true) + 1
          assert.equal(status_at, utf8.len(line:sub(1, at - 1)), line)
        end
      end
    end
    for _, g in pairs(groups) do
      local found = false
      for _, line in ipairs(printed) do
        local s, st, n, _, _, total = line:match("^(.-)%s+(%S+)%s+(%d+)%s+(%S+)%s+(%S+)%s+(%S+)%s+%u%u%u$")
        if s == g.supplier and st == g.status then
          found = true
          assert.equal(g.n, tonumber(n))
          assert.is_true(near(total, g.total))
        end
      end
      assert.is_true(found, g.supplier .. " " .. g.status)
    end

    -- Landed costs cover the orders received in the month, whenever ordered.
    local received = {}
    for po in client.purchase_orders:each { orderStatus = "Receipted,Costed,Complete" } do
      if po.ReceivedDate and po.ReceivedDate:sub(1, 7) == month then received[#received + 1] = po end
    end
    local receipted, landed_total = 0, 0
    for _, po in ipairs(received) do
      do
        receipted = receipted + 1
        local extra = 0
        for _, c in ipairs(po:costs()) do extra = extra + c.BCCost end
        assert.is_true(extra > 0)
        local landed = po.BCSubTotal + extra
        landed_total = landed_total + landed
        local line
        for _, l in ipairs(printed) do
          if l:sub(1, #po.OrderNumber + 1) == po.OrderNumber .. " " then line = l end
        end
        assert.truthy(line, po.OrderNumber)
        assert.truthy(line:find(("landed %10.2f"):format(landed), 1, true), line)
      end
    end
    assert.is_true(receipted > 0)
    assert.truthy(out:find(("landed costs of %d receipted order"):format(receipted), 1, true))
    assert.truthy(out:find(("landed total: %.2f"):format(landed_total), 1, true))
  end)

  it("month_end.lua refuses a month that is not YYYY-MM", function()
    local r = run_example(sb, "month_end.lua", { "2025-13" })
    assert.equal(1, r.code)
    assert.truthy(r.stderr:find('MONTH: expected YYYY-MM, got "2025-13"', 1, true))
  end)
end)
