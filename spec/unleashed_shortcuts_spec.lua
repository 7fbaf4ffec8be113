-- What a script author reaches for first: an order by its number, one
-- supplier's orders, placing an order, credentials from the command's
-- profile file, and JSON that keeps the API's empty arrays.
local sandbox = require "support.sandbox"
local files = require "support.files"
local unleashed = require "unleashed"
local cjson = require "cjson"

local quote = sandbox.quote

-- One order line of the product every seed has.
local function bolts(qty, price)
  return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = qty, UnitPrice = price }
end

describe("library shortcuts", function()
  local sb, client, calls

  setup(function()
    sb = sandbox.start { seed = 60, admin = true }
    calls = {}
    client = unleashed.new { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                             on_request = function(ev) calls[#calls + 1] = ev end }
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
  end)

  describe("purchase_orders:get", function()
    it("takes an order number, in any case, with one call using orderNumber", function()
      local want = client.purchase_orders:page(1, { pageSize = 20 }).items[16]
      for _, ref in ipairs { want.OrderNumber, want.OrderNumber:lower() } do
        calls = {}
        local po = client.purchase_orders:get(ref)
        assert.equal(want.Guid, po.Guid)
        assert.equal(1, #calls)
        assert.equal("/PurchaseOrders", calls[1].path)
        assert.equal("unleashed.PurchaseOrder", getmetatable(po).__name)
        assert.equal(po, po:refresh())   -- a real order object, with its methods
      end
      calls = {}
      assert.equal(want.OrderNumber, client.purchase_orders:get(want.Guid).OrderNumber)
      assert.equal("/PurchaseOrders/" .. want.Guid, calls[1].path)
    end)

    it("raises not_found, naming the number, for one that does not exist", function()
      local ok, e = pcall(client.purchase_orders.get, client.purchase_orders, "PO-99999999")
      assert.is_false(ok)
      assert.is_true(unleashed.Error.is(e, "not_found"))
      assert.truthy(tostring(e):find("PO-99999999", 1, true))
      assert.equal("GET", e.method)
      assert.equal("/PurchaseOrders", e.path)
    end)

    it("refuses what is neither a GUID nor an order number before sending", function()
      calls = {}
      for _, ref in ipairs { "", "PO-0000000000000001", "PO-1\n", 42, false } do
        local ok, e = pcall(client.purchase_orders.get, client.purchase_orders, ref)
        assert.is_false(ok)
        assert.equal("validation", e.kind)
        assert.equal("ref", e.details[1].field)
      end
      assert.equal(0, #calls)
    end)
  end)

  describe("exactSupplierCode", function()
    setup(function()
      client.purchase_orders:create {
        Supplier = { SupplierCode = "ACME2" }, OrderStatus = "Parked",
        PurchaseOrderLines = { bolts(1, 1) },
      }
    end)

    it("lists that supplier's orders only, where supplierCode is the API's prefix", function()
      local prefix = client.purchase_orders:list { supplierCode = "ACME" }
      local exact = client.purchase_orders:list { exactSupplierCode = "acme" }
      local want = {}
      for _, po in ipairs(prefix) do
        if po.Supplier.SupplierCode == "ACME" then want[#want + 1] = po.Guid end
      end
      assert.is_true(#want > 0)
      assert.is_true(#prefix > #want)
      assert.equal(#want, #exact)
      for n, po in ipairs(exact) do assert.equal(want[n], po.Guid) end
      -- across pages too, and with the other filters
      local paged = client.purchase_orders:list({ exactSupplierCode = "ACME", orderStatus = "Parked" },
        { page_size = 2 })
      for _, po in ipairs(paged) do
        assert.equal("ACME", po.Supplier.SupplierCode)
        assert.equal("Parked", po.OrderStatus)
      end
      -- a break still ends the listing at once
      local seen = 0
      for po in client.purchase_orders:each({ exactSupplierCode = "ACME" }, { page_size = 1 }) do
        assert.equal("ACME", po.Supplier.SupplierCode)
        seen = seen + 1
        if seen == 2 then break end
      end
      assert.equal(2, seen)
    end)

    it("is refused with supplierCode, and outside each, list and changes", function()
      local ok, e = pcall(client.purchase_orders.list, client.purchase_orders,
        { exactSupplierCode = "ACME", supplierCode = "AC" })
      assert.is_false(ok)
      assert.equal("exactSupplierCode", e.details[1].field)
      local pok, pe = pcall(client.purchase_orders.page, client.purchase_orders, 1,
        { exactSupplierCode = "ACME" })
      assert.is_false(pok)
      assert.equal("exactSupplierCode", pe.details[1].field)
      assert.truthy(pe.details[1].message:find("each, list and changes only", 1, true))
    end)
  end)

  describe("po:place()", function()
    it("places a Parked order with a PUT, and refuses one without lines before sending", function()
      local po = client.purchase_orders:create {
        Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
        PurchaseOrderLines = { bolts(2, 1) },
      }
      calls = {}
      assert.equal(po, po:place())
      assert.equal("Placed", po.OrderStatus)
      assert.equal("PUT", calls[1].method)
      assert.equal("Placed", sb:json("GET", "/PurchaseOrders/" .. po.Guid).OrderStatus)
      local empty = client.purchase_orders:create { Supplier = { SupplierCode = "ACME" },
                                                    OrderStatus = "Parked" }
      calls = {}
      local ok, e = pcall(empty.place, empty)
      assert.is_false(ok)
      assert.equal("validation", e.kind)
      assert.equal(0, #calls)
    end)
  end)

  describe("unleashed.json.encode", function()
    it("keeps an order's empty arrays as [] where plain cjson writes {}", function()
      local po = client.purchase_orders:page(1, { pageSize = 1 }).items[1]
      assert.same({}, po.SalesOrders)
      local text = unleashed.json.encode(po)
      assert.truthy(text:find('"SalesOrders":[]', 1, true), text)
      assert.truthy(cjson.encode(po):find('"SalesOrders":{}', 1, true))
      local back = cjson.decode(text)
      assert.equal(po.Guid, back.Guid)
      assert.equal(#po.PurchaseOrderLines, #back.PurchaseOrderLines)
      assert.equal("[]", unleashed.json.encode(unleashed.array()))
      assert.equal('{"a":null,"b":12.34}', unleashed.json.encode { a = unleashed.null, b = 12.34 })
    end)

    it("raises a validation error naming the path of what JSON cannot hold", function()
      local ok, e = pcall(unleashed.json.encode, { Lines = { { Qty = 0 / 0 } } })
      assert.is_false(ok)
      assert.equal("validation", e.kind)
      assert.equal("Lines[1].Qty", e.details[1].field)
    end)
  end)

  describe("unleashed.from_profile", function()
    local dir
    setup(function() dir = files.tmpdir() end)
    teardown(function() os.execute("rm -rf " .. quote(dir)) end)

    local function profile(mode, body)
      assert(os.execute("mkdir -p " .. quote(dir .. "/unleashed")))
      local path = dir .. "/unleashed/credentials"
      os.execute("rm -rf " .. quote(path))
      files.write_file(path, body)
      assert(os.execute(("chmod %s %s"):format(mode, quote(path))))
      return path
    end

    local function env(vars)
      vars.XDG_CONFIG_HOME = dir
      return function(name) return vars[name] end
    end

    it("reads the command's credentials file: a named section, UNLEASHED_PROFILE, or [default]", function()
      profile("600", ("[default]\napi_id = %s\napi_key = %s  # the key\nbase_url = %s\n\n"
        .. "[other]\napi_id = %s\napi_key = %s\nclient_type = acme/Profiles\n")
        :format(sb.api_id, sb.api_key, sb.base_url, sb.api_id, sb.api_key))
      local c = unleashed.from_profile(nil, nil, env {})
      assert.equal(sb.base_url, c.base_url)
      assert.equal(1, #c:list("Warehouses", { pageSize = 1 }) > 0 and 1 or 0)
      c:close()
      local o = unleashed.from_profile("other", { page_size = 7 }, env { UNLEASHED_BASE_URL = sb.base_url })
      assert.equal("acme/Profiles", o.client_type)
      assert.equal(7, o.page_size)
      assert.equal(sb.base_url, o.base_url)   -- the environment fills what the section leaves out
      o:close()
      local p = unleashed.from_profile(nil, nil, env { UNLEASHED_PROFILE = "other",
                                                         UNLEASHED_BASE_URL = sb.base_url })
      assert.equal("acme/Profiles", p.client_type)
      p:close()
    end)

    it("refuses, as kind auth, a file others can read, a missing section, a bad line, a directory", function()
      local function refused(pattern, name)
        local ok, e = pcall(unleashed.from_profile, name, nil, env {})
        assert.is_false(ok)
        assert.is_true(unleashed.Error.is(e, "auth"), tostring(e))
        assert.truthy(tostring(e):find(pattern, 1, true), tostring(e))
        assert.falsy(tostring(e):find(sb.api_key, 1, true))
      end
      local body = ("[default]\napi_id = %s\napi_key = %s\n"):format(sb.api_id, sb.api_key)
      profile("644", body)
      refused("chmod 600")
      profile("600", body)
      refused('no [nope] section', "nope")
      profile("600", body .. "api-key = x\n")
      refused('line 4: unknown key "api-key"')
      local path = dir .. "/unleashed/credentials"
      os.execute("rm -rf " .. quote(path))
      assert(os.execute("mkdir -p " .. quote(path)))
      refused("is a directory")
      os.execute("rm -rf " .. quote(path))
      refused("does not exist")
    end)
  end)
end)
