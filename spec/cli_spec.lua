-- The `unleashed` command, run as a process (bin/unleashed) against a
-- sandbox: every command and flag, exit codes, --help, CSV/JSON/table output
-- checked against the library's own listing, the profile file's permission
-- check, and that no output ever carries the API key.
local sandbox = require "support.sandbox"
local files = require "support.files"
local read_all = files.read_all
local write_file = files.write_file
local tmpdir = files.tmpdir
local unleashed = require "unleashed"
local cjson = require "cjson"

local ROOT = os.getenv("UNLEASHED_ROOT") or "."

-- One order line of the product every seed has.
local function bolts(qty, price)
  return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = qty, UnitPrice = price }
end
local quote = sandbox.quote

-- Every output any run produced, checked at the end for the key.
local outputs = {}

-- Runs bin/unleashed with a clean environment: no UNLEASHED_* variables but
-- those given, HOME and XDG_CONFIG_HOME in a private folder.
local function run(args, env, opts)
  opts = opts or {}
  local words = { "env", "-u UNLEASHED_API_ID", "-u UNLEASHED_API_KEY", "-u UNLEASHED_BASE_URL",
                  "-u UNLEASHED_CLIENT_TYPE", "-u UNLEASHED_PROFILE", "-u XDG_CONFIG_HOME",
                  "-u SSLKEYLOGFILE" }
  local names = {}
  for k in pairs(env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do words[#words + 1] = k .. "=" .. quote(env[k]) end
  words[#words + 1] = quote(ROOT .. "/bin/unleashed")
  for _, a in ipairs(args) do words[#words + 1] = quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local cmd = table.concat(words, " ") .. " <" .. quote(opts.stdin or "/dev/null") .. " >" .. quote(out)
    .. " 2>" .. quote(err)
  if opts.tty then
    -- script(1) gives the command a terminal for stdout and stderr alike
    cmd = "script -qec " .. quote(table.concat(words, " ")) .. " /dev/null </dev/null >" .. quote(out)
      .. " 2>" .. quote(err)
  end
  local _, how, code = os.execute(cmd)
  local r = { code = how == "exit" and code or 128 + code, stdout = read_all(out), stderr = read_all(err) }
  os.remove(out)
  os.remove(err)
  outputs[#outputs + 1] = r.stdout .. r.stderr
  return r
end

-- An RFC 4180 reader written apart from the command's writer: a character
-- state machine (field start, unquoted, quoted, quote seen in quoted).
local function parse_csv(text)
  local rows, row, buf = {}, {}, {}
  local state = "start"
  local i = 1
  local function push_field()
    row[#row + 1] = table.concat(buf)
    buf = {}
  end
  local function push_row()
    push_field()
    rows[#rows + 1] = row
    row = {}
  end
  while i <= #text do
    local ch = text:sub(i, i)
    if state == "quoted" then
      if ch == '"' then state = "quote_in_quoted" else buf[#buf + 1] = ch end
    elseif state == "quote_in_quoted" then
      if ch == '"' then
        buf[#buf + 1] = '"'
        state = "quoted"
      elseif ch == "," then
        push_field(); state = "start"
      elseif ch == "\r" or ch == "\n" then
        if ch == "\r" then
          assert(text:sub(i + 1, i + 1) == "\n", "bare CR after a quoted field")
          i = i + 1
        end
        push_row(); state = "start"
      else
        error("text after a closing quote at byte " .. i)
      end
    else -- start or unquoted
      if ch == '"' and state == "start" then
        state = "quoted"
      elseif ch == '"' then
        error("a quote inside an unquoted field at byte " .. i)
      elseif ch == "," then
        push_field(); state = "start"
      elseif ch == "\r" or ch == "\n" then
        if ch == "\r" then assert(text:sub(i + 1, i + 1) == "\n", "bare CR in a field"); i = i + 1 end
        push_row(); state = "start"
      else
        buf[#buf + 1] = ch
        state = "unquoted"
      end
    end
    i = i + 1
  end
  assert(state ~= "quoted", "unterminated quoted field")
  if #buf > 0 or #row > 0 then push_row() end
  return rows
end

local function as_records(text)
  local rows = parse_csv(text)
  local header = table.remove(rows, 1)
  local records = {}
  for n, r in ipairs(rows) do
    assert(#r == #header, ("record %d has %d fields, header %d"):format(n, #r, #header))
    local rec = {}
    for k, name in ipairs(header) do rec[name] = r[k] end
    records[n] = rec
  end
  return records, header
end

local function num_equal(text, value)
  if value == nil then return text == "" end
  return tonumber(text) ~= nil and math.abs(tonumber(text) - value) < 1e-9
end

describe("unleashed command", function()
  local sb, env, client, home

  setup(function()
    sb = sandbox.start { seed = 60, admin = true }
    env = { UNLEASHED_API_ID = sb.api_id, UNLEASHED_API_KEY = sb.api_key, UNLEASHED_BASE_URL = sb.base_url }
    home = tmpdir()
    env.HOME = home
    client = unleashed.new { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
  end)

  teardown(function()
    if client then client:close() end
    if sb then sb:stop() end
    if home then os.execute("rm -rf " .. quote(home)) end
  end)

  local function clean_env(extra)
    local e = { HOME = home }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  describe("--help", function()
    it("prints the commands, the credentials and the exit codes, exit 0", function()
      local r = run({ "--help" }, clean_env())
      assert.equal(0, r.code)
      for _, word in ipairs { "po list", "po get", "po receipt", "po complete", "run", "sandbox", "--profile",
                              "UNLEASHED_API_ID", ".config/unleashed/credentials", "exit codes" } do
        assert.truthy(r.stdout:find(word, 1, true), word)
      end
      for code, what in pairs { [0] = "ok", [2] = "usage", [3] = "auth", [4] = "validation",
                                [5] = "not found", [6] = "network", [7] = "rate limited",
                                [130] = "interrupted" } do
        assert.truthy(r.stdout:find("\n%s+" .. code .. "  " .. what), what)
      end
      for _, word in ipairs { "po create", "po update", "po place", "po delete", "po add-line", "po costs",
                              "--concurrency", "--retries", "--timeout", "--verbose", "SSLKEYLOGFILE" } do
        assert.truthy(r.stdout:find(word, 1, true), word)
      end
    end)

    it("exists for every command and subcommand, as --help, -h and `help TOPIC`", function()
      for _, topic in ipairs { "po", "po list", "po get", "po create", "po update", "po place", "po add-line",
                               "po costs", "po receipt", "po complete", "po delete", "po sync", "po watch",
                               "po report", "run", "sandbox" } do
        local words = {}
        for w in topic:gmatch("%S+") do words[#words + 1] = w end
        local texts = {}
        for _, flag in ipairs { "--help", "-h" } do
          local args = table.move(words, 1, #words, 1, {})
          args[#args + 1] = flag
          local r = run(args, clean_env())
          assert.equal(0, r.code, table.concat(args, " "))
          assert.truthy(r.stdout:find("usage: unleashed " .. topic, 1, true), table.concat(args, " "))
          texts[#texts + 1] = r.stdout
        end
        local h = run({ "help", table.unpack(words) }, clean_env())
        assert.equal(0, h.code, "help " .. topic)
        assert.equal(texts[1], texts[2])
        assert.equal(texts[1], h.stdout)
      end
      for _, args in ipairs { { "-h" }, { "--help" }, { "help" } } do
        local r = run(args, clean_env())
        assert.equal(0, r.code)
        assert.truthy(r.stdout:find("usage: unleashed [OPTIONS] COMMAND", 1, true))
      end
    end)

    it("`help BOGUS` is a usage error, exit 2", function()
      local r = run({ "help", "BOGUS" }, clean_env())
      assert.equal(2, r.code)
      assert.equal("", r.stdout)
      assert.truthy(r.stderr:find('no help on "BOGUS"', 1, true), r.stderr)
    end)

    it("sandbox --help includes the sandbox's own flags", function()
      local r = run({ "sandbox", "--help" }, clean_env())
      assert.equal(0, r.code)
      assert.truthy(r.stdout:find("--seed N", 1, true))
    end)

    it("--version prints the core's version", function()
      local r = run({ "--version" }, clean_env())
      assert.equal(0, r.code)
      assert.equal("unleashed " .. require("unleashed.core").version .. "\n", r.stdout)
    end)
  end)

  describe("usage errors exit 2", function()
    for _, case in ipairs {
      { {}, "usage: unleashed" },
      { { "frobnicate" }, 'unknown command "frobnicate"' },
      { { "--bogus" }, "unknown flag --bogus" },
      { { "po" }, "usage: unleashed po" },
      { { "po", "cancel" }, 'unknown subcommand "cancel"' },
      { { "po", "list", "--colour" }, "unknown flag --colour" },
      { { "po", "list", "--format", "xml" }, "--format: expected one of table, csv, json" },
      { { "po", "list", "--format" }, "--format needs a value" },
      { { "po", "list", "--since", "yesterday" }, "--since: expected a date" },
      -- malformed or not on the calendar: one kind of error
      { { "po", "list", "--since", "2026-02-30" }, '--since: expected a date YYYY-MM-DD '
        .. '(or YYYY-MM-DDTHH:MM:SS, UTC) that is on the calendar, got "2026-02-30"' },
      { { "po", "list", "--since", "2026/01/01" }, '--since: expected a date YYYY-MM-DD '
        .. '(or YYYY-MM-DDTHH:MM:SS, UTC) that is on the calendar, got "2026/01/01"' },
      { { "po", "list", "--since", "2025-13-45" }, "that is on the calendar" },
      { { "po", "list", "--status", "Placed,Lost" }, "--status: expected one of" },
      { { "po", "list", "--supplier", "A", "--supplier-prefix", "A" }, "not both" },
      { { "po", "list", "--raw-csv" }, "--raw-csv goes with --format csv" },
      { { "po", "list", "--concurrency", "0" }, "--concurrency: expected an integer from 1 to 64" },
      { { "--retries", "101", "po", "list" }, "--retries: expected an integer from 0 to 100" },
      { { "po", "list", "--timeout", "soon" }, "--timeout: expected seconds from 0.001 to 86400" },
      { { "po", "create" }, "missing FILE" },
      { { "po", "create", "/nonexistent/orders.csv" }, "cannot open /nonexistent/orders.csv" },
      { { "po", "create", "x.csv", "--status", "Costed" },
        "--status: expected one of Parked, Placed, Complete" },
      { { "po", "update", "PO-00000001" }, "nothing to change" },
      { { "po", "update", "PO-00000001", "--delivery-date", "2026-02-30" },
        "--delivery-date: expected a date" },
      { { "po", "add-line", "PO-00000001", "--product", "X", "--quantity", "1" }, "missing --price" },
      { { "po", "add-line", "PO-00000001", "--product", "X", "--quantity", "0", "--price", "1" },
        "--quantity: expected a number above 0" },
      { { "po", "add-line", "PO-00000001", "--product", "X", "--quantity", "1", "--price", "1",
          "--discount", "2" }, "--discount: expected a rate from 0 to 1" },
      { { "po", "costs", "PO-00000001", "--format", "xml" }, "--format: expected one of table, csv, json" },
      { { "po", "place" }, "missing ORDER" },
      { { "po", "delete" }, "missing ORDER" },
      { { "help", "BOGUS" }, 'no help on "BOGUS"' },
      { { "po", "list", "--status", "Lost" }, "--status: expected one of" },
      { { "po", "list", "--page-size", "0" }, "--page-size: expected an integer from 1 to 1000" },
      { { "po", "list", "extra" }, 'unexpected argument "extra"' },
      { { "po", "get" }, "missing ORDER (a GUID or an order number)" },
      { { "po", "get", "A", "B" }, 'unexpected argument "B"' },
      { { "po", "receipt" }, "missing ORDER" },
      { { "po", "complete" }, "missing ORDER" },
      { { "run" }, "missing SCRIPT" },
      { { "run", "/nonexistent/script.lua" }, "cannot open script" },
    } do
      it(table.concat(case[1], " ") .. " -> " .. case[2], function()
        local r = run(case[1], env)
        assert.equal(2, r.code)
        assert.truthy(r.stderr:find(case[2], 1, true), r.stderr)
        assert.equal("", r.stdout)
      end)
    end
  end)

  describe("po list", function()
    it("--format csv reads back, with an independent CSV parser, to the library's orders", function()
      local r = run({ "po", "list", "--format", "csv", "--page-size", "7" }, env)
      assert.equal(0, r.code, r.stderr)
      assert.truthy(r.stdout:find("\r\n", 1, true))
      local records, header = as_records(r.stdout)
      assert.same({ "OrderNumber", "Guid", "OrderStatus", "SupplierCode", "SupplierName", "WarehouseCode",
                    "OrderDate", "DeliveryDate", "Currency", "SubTotal", "TaxTotal", "Total", "SupplierRef",
                    "Comments" }, header)
      local orders = client.purchase_orders:list()
      assert.is_true(#orders > 20)
      assert.equal(#orders, #records)
      local quoted = 0
      for n, po in ipairs(orders) do
        local rec = records[n]
        assert.equal(po.OrderNumber, rec.OrderNumber)
        assert.equal(po.Guid, rec.Guid)
        assert.equal(po.OrderStatus, rec.OrderStatus)
        assert.equal(po.Supplier.SupplierCode, rec.SupplierCode)
        assert.equal(po.Supplier.SupplierName or "", rec.SupplierName)
        assert.equal(po.Warehouse and po.Warehouse.WarehouseCode or "", rec.WarehouseCode)
        assert.equal(po.OrderDate or "", rec.OrderDate)
        assert.equal(po.DeliveryDate or "", rec.DeliveryDate)
        assert.equal(po.Currency and po.Currency.CurrencyCode or "", rec.Currency)
        assert.is_true(num_equal(rec.SubTotal, po.SubTotal), rec.SubTotal)
        assert.is_true(num_equal(rec.TaxTotal, po.TaxTotal), rec.TaxTotal)
        assert.is_true(num_equal(rec.Total, po.Total), rec.Total)
        assert.equal(po.SupplierRef or "", rec.SupplierRef)
        assert.equal(po.Comments or "", rec.Comments)
        if (po.Supplier.SupplierCode):find("[,\"]") or (po.Supplier.SupplierName or ""):find("[,\"]") then
          quoted = quoted + 1
        end
      end
      -- Deleted orders are not listed unless asked for
      for _, rec in ipairs(records) do assert.not_equal("Deleted", rec.OrderStatus) end
      assert.is_number(quoted)
    end)

    it("quotes fields holding commas, quotes and line breaks (RFC 4180)", function()
      -- An order whose comments need every kind of quoting, made through the library.
      local po = client.purchase_orders:create {
        Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
        Comments = 'Ring "Bob", then\r\nleave at the door',
        PurchaseOrderLines = {
          { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 2, UnitPrice = 1.5 },
        },
      }
      local r = run({ "po", "list", "--format", "csv", "--status", "Parked", "--supplier", "ACME" }, env)
      assert.equal(0, r.code, r.stderr)
      assert.truthy(r.stdout:find('"Ring ""Bob"", then\r\nleave at the door"', 1, true))
      local found
      for _, rec in ipairs((as_records(r.stdout))) do
        if rec.Guid == po.Guid then found = rec end
      end
      assert.is_table(found)
      assert.equal('Ring "Bob", then\r\nleave at the door', found.Comments)
      assert.equal(po.OrderNumber, found.OrderNumber)
    end)

    it("--supplier, --status, --warehouse and --since filter as the library does", function()
      local cases = {
        { { "--supplier", "ACME", "--status", "Placed" }, { supplierCode = "ACME", orderStatus = "Placed" } },
        { { "--warehouse", "WLG" }, { warehouseCode = "WLG" } },
        { { "--since", "2025-06-01" }, { modifiedSince = "2025-06-01" } },
        { { "--status", "deleted" }, { orderStatus = "Deleted" } },
      }
      for _, case in ipairs(cases) do
        local args = { "po", "list", "--format", "csv" }
        for _, a in ipairs(case[1]) do args[#args + 1] = a end
        local r = run(args, env)
        assert.equal(0, r.code, r.stderr)
        local records = as_records(r.stdout)
        local want = client.purchase_orders:list(case[2])
        assert.is_true(#want > 0, table.concat(case[1], " "))
        assert.equal(#want, #records, table.concat(case[1], " "))
        for n, po in ipairs(want) do assert.equal(po.Guid, records[n].Guid) end
      end
    end)

    it("--format json prints an array of the API's objects", function()
      local r = run({ "po", "list", "--format", "json", "--supplier", "ACME" }, env)
      assert.equal(0, r.code, r.stderr)
      local list = cjson.decode(r.stdout)
      local want = client.purchase_orders:list { supplierCode = "ACME" }
      assert.equal(#want, #list)
      for n, po in ipairs(want) do
        assert.equal(po.Guid, list[n].Guid)
        assert.equal(po.OrderNumber, list[n].OrderNumber)
        assert.equal(#po.PurchaseOrderLines, #list[n].PurchaseOrderLines)
      end
      local empty = run({ "po", "list", "--format", "json", "--supplier", "NOSUCHSUPPLIER" }, env)
      assert.equal(0, empty.code)
      assert.same({}, cjson.decode(empty.stdout))
      assert.equal("[", empty.stdout:sub(1, 1))
    end)

    it("--format table (the default) prints aligned columns", function()
      local r = run({ "po", "list", "--status", "Placed" }, env)
      assert.equal(0, r.code, r.stderr)
      local lines = {}
      for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
      local want = client.purchase_orders:list { orderStatus = "Placed" }
      assert.equal(#want + 1, #lines)
      local head = lines[1]
      assert.truthy(head:match("^ORDER%s+STATUS%s+SUPPLIER"))
      assert.truthy(head:match("TOTAL  CCY$"), head)
      local status_col = head:find("STATUS", 1, true)
      local total_end = head:find("TOTAL", 1, true) + 4  -- TOTAL is right-aligned under its heading
      for n, po in ipairs(want) do
        local line = lines[n + 1]
        assert.equal(po.OrderNumber, line:sub(1, #po.OrderNumber))
        assert.equal("Placed", line:sub(status_col, status_col + 5))
        local total = ("%.2f"):format(po.Total)
        assert.equal(total, line:sub(total_end - #total + 1, total_end))
        assert.equal(po.Currency.CurrencyCode, line:sub(total_end + 3))   -- the currency beside it
      end
      assert.truthy(r.stderr:find(#want .. " purchase orders", 1, true))
    end)

    it("draws no progress bar when stderr is not a terminal", function()
      local r = run({ "po", "list", "--format", "csv", "--page-size", "5" }, env)
      assert.equal(0, r.code)
      assert.falsy(r.stderr:find("pages", 1, true))
      assert.equal("", r.stderr)
    end)

    it("draws a progress bar on a terminal while pages arrive", function()
      local r = run({ "po", "list", "--format", "csv", "--page-size", "5" }, env, { tty = true })
      assert.equal(0, r.code, r.stdout)
      local pages = math.ceil(#client.purchase_orders:list() / 5)
      assert.truthy(r.stdout:find(("] %d/%d pages"):format(pages, pages), 1, true), r.stdout)
      assert.truthy(r.stdout:find("[#", 1, true))
    end)
  end)

  describe("po get", function()
    it("finds an order by number and by GUID, with its lines", function()
      local po = client.purchase_orders:list { supplierCode = "ACME" }[1]
      for _, ref in ipairs { po.OrderNumber, po.Guid } do
        local r = run({ "po", "get", ref }, env)
        assert.equal(0, r.code, r.stderr)
        assert.truthy(r.stdout:find(po.Guid, 1, true))
        assert.truthy(r.stdout:find(po.OrderNumber, 1, true))
        assert.truthy(r.stdout:find("Status:%s+" .. po.OrderStatus))
        for _, line in ipairs(po.PurchaseOrderLines) do
          assert.truthy(r.stdout:find(line.Product.ProductCode, 1, true))
        end
      end
      local j = run({ "po", "get", po.OrderNumber, "--format", "json" }, env)
      assert.equal(0, j.code, j.stderr)
      local doc = cjson.decode(j.stdout)
      assert.equal(po.Guid, doc.Guid)
      assert.equal(#po.PurchaseOrderLines, #doc.PurchaseOrderLines)
    end)

    it("exits 5 for an order that does not exist", function()
      local r = run({ "po", "get", "PO-99999999" }, env)
      assert.equal(5, r.code)
      assert.truthy(r.stderr:find("PO-99999999", 1, true))
      local g = run({ "po", "get", unleashed.guid() }, env)
      assert.equal(5, g.code)
    end)
  end)

  describe("po receipt and po complete", function()
    it("receipt a Placed order, then complete it", function()
      local po = client.purchase_orders:list { orderStatus = "Placed" }[1]
      local r = run({ "po", "receipt", po.OrderNumber }, env)
      assert.equal(0, r.code, r.stderr)
      assert.truthy(r.stdout:find(po.OrderNumber .. " receipted: status Receipted", 1, true), r.stdout)
      local doc = sb:json("GET", "/PurchaseOrders/" .. po.Guid)
      assert.equal("Receipted", doc.OrderStatus)

      local c = run({ "po", "complete", po.Guid }, env)
      assert.equal(0, c.code, c.stderr)
      assert.truthy(c.stdout:find("completed: status Complete", 1, true))
      assert.equal("Complete", sb:json("GET", "/PurchaseOrders/" .. po.Guid).OrderStatus)

      -- the API refuses a second receipt: exit 4 with the server's description
      local again = run({ "po", "receipt", po.OrderNumber }, env)
      assert.equal(4, again.code)
      assert.truthy(again.stderr:find("only a Placed purchase order can be receipted", 1, true), again.stderr)
      assert.equal("", again.stdout)
    end)

    it("exits 5 for an unknown order and leaves the sandbox untouched", function()
      sb:reset()
      local r = run({ "po", "receipt", "PO-77777777" }, env)
      assert.equal(5, r.code)
      for call in pairs(sb:stats().Calls) do assert.falsy(call:find("^POST")) end
    end)
  end)

  describe("exit codes", function()
    it("3 when the API refuses the credentials, and the key is never printed", function()
      local bad = { UNLEASHED_API_ID = sb.api_id, UNLEASHED_API_KEY = "wrong-" .. sb.api_key,
                    UNLEASHED_BASE_URL = sb.base_url, HOME = home }
      local r = run({ "po", "list" }, bad)
      assert.equal(3, r.code)
      assert.falsy((r.stdout .. r.stderr):find("wrong-" .. sb.api_key, 1, true))
    end)

    it("3 when there are no credentials at all, saying where they can come from", function()
      local r = run({ "po", "list" }, clean_env())
      assert.equal(3, r.code)
      assert.truthy(r.stderr:find("UNLEASHED_API_ID", 1, true))
      assert.truthy(r.stderr:find(home .. "/.config/unleashed/credentials", 1, true))
    end)

    it("4 when the library or the API refuses the input", function()
      local r = run({ "po", "get", "NOT-AN-ORDER-NUMBER" }, env)   -- longer than an order number can be
      assert.equal(4, r.code, r.stderr)
      local bad = os.tmpname()
      write_file(bad, '{"Supplier":{"SupplierCode":"ACME"},"OrderStatus":"Shipped"}')
      local c = run({ "po", "create", bad }, env)
      os.remove(bad)
      assert.equal(4, c.code, c.stderr)
    end)

    it("6 when the API cannot be reached", function()
      local e = clean_env { UNLEASHED_API_ID = "id", UNLEASHED_API_KEY = "key",
                            UNLEASHED_BASE_URL = "http://127.0.0.1:1" }
      local r = run({ "po", "list" }, e)
      assert.equal(6, r.code, r.stderr)
    end)

    it("7 when the monthly quota is spent", function()
      local q = sandbox.start { seed = 5, args = { "--quota", "0" } }
      local r = run({ "po", "list" }, clean_env { UNLEASHED_API_ID = q.api_id, UNLEASHED_API_KEY = q.api_key,
                                                  UNLEASHED_BASE_URL = q.base_url })
      q:stop()
      assert.equal(7, r.code, r.stderr)
      assert.truthy(r.stderr:lower():find("quota", 1, true))
    end)
  end)

  describe("profile file", function()
    local function write_profile(dir, mode, body)
      assert(os.execute("mkdir -p " .. quote(dir .. "/unleashed")))
      local path = dir .. "/unleashed/credentials"
      write_file(path, body)
      assert(os.execute(("chmod %s %s"):format(mode, quote(path))))
      return path
    end

    local function body(section)
      return ("# companies\n[%s]\napi_id = %s\napi_key = %s\nbase_url = %s\nclient_type = spec/Profiles\n")
        :format(section, sb.api_id, sb.api_key, sb.base_url)
    end

    it("is refused at mode 0644, saying why, and accepted at 0600", function()
      local path = write_profile(home .. "/.config", "644", body("acme"))
      local r = run({ "--profile", "acme", "po", "list", "--format", "csv" }, clean_env())
      assert.equal(3, r.code)
      assert.truthy(r.stderr:find(path, 1, true))
      assert.truthy(r.stderr:find("0644", 1, true))
      assert.truthy(r.stderr:find("others can read it", 1, true))
      assert.truthy(r.stderr:find("chmod 600", 1, true))
      assert.falsy((r.stdout .. r.stderr):find(sb.api_key, 1, true))
      assert.equal("", r.stdout)

      assert(os.execute("chmod 600 " .. quote(path)))
      local ok = run({ "--profile", "acme", "po", "list", "--format", "csv" }, clean_env())
      assert.equal(0, ok.code, ok.stderr)
      assert.equal(#client.purchase_orders:list() + 1, #parse_csv(ok.stdout))
      os.remove(path)
    end)

    it("is refused when its group can read it too (0640)", function()
      local path = write_profile(home .. "/.config", "640", body("acme"))
      local r = run({ "po", "list", "--profile", "acme" }, clean_env())
      assert.equal(3, r.code)
      assert.truthy(r.stderr:find("its group can read it", 1, true))
      os.remove(path)
    end)

    it("follows XDG_CONFIG_HOME, --profile after the subcommand, and [default]", function()
      local xdg = tmpdir()
      local path = write_profile(xdg, "600", body("default") .. "\n" .. body("other"))
      local r = run({ "po", "get", "PO-00000001", "--profile", "other" }, clean_env { XDG_CONFIG_HOME = xdg })
      assert.equal(0, r.code, r.stderr)
      assert.truthy(r.stdout:find("PO-00000001", 1, true))
      local d = run({ "po", "list", "--format", "json" }, clean_env { XDG_CONFIG_HOME = xdg })
      assert.equal(0, d.code, d.stderr)
      local missing = run({ "--profile", "nope", "po", "list" }, clean_env { XDG_CONFIG_HOME = xdg })
      assert.equal(3, missing.code)
      assert.truthy(missing.stderr:find('no [nope] section in ' .. path, 1, true))
      assert.truthy(missing.stderr:find("sections: default, other", 1, true))
      os.execute("rm -rf " .. quote(xdg))
    end)

    it("names the line and the rule for a malformed file", function()
      local path = write_profile(home .. "/.config", "600", "[acme]\napi_id = x\npassword = y\n")
      local r = run({ "--profile", "acme", "po", "list" }, clean_env())
      assert.equal(3, r.code)
      assert.truthy(r.stderr:find(path .. ' line 3: unknown key "password"', 1, true), r.stderr)
      os.remove(path)
    end)
  end)

  describe("run", function()
    local dir
    setup(function() dir = tmpdir() end)
    teardown(function() os.execute("rm -rf " .. quote(dir)) end)

    it("gives the script `client`, `unleashed` and its arguments in `arg`", function()
      local script = dir .. "/count.lua"
      write_file(script, [[
local n = 0
for _ in client.purchase_orders:each { supplierCode = arg[1] } do n = n + 1 end
print(("%s %s %d %s %s"):format(arg[0]:match("[^/]*$"), arg[1], n, arg[2], select("#", ...)))
print(type(unleashed.new) .. " " .. type(unleashed.Error))
]])
      local r = run({ "run", script, "ACME", "--flag-for-script" }, env)
      assert.equal(0, r.code, r.stderr)
      local want = #client.purchase_orders:list { supplierCode = "ACME" }
      assert.equal(("count.lua ACME %d --flag-for-script 2\nfunction table\n"):format(want), r.stdout)
    end)

    it("reports a script's uncaught error with a traceback, exit 1", function()
      local script = dir .. "/boom.lua"
      write_file(script, "local function f() error('boom here') end\nf()\n")
      local r = run({ "run", script }, env)
      assert.equal(1, r.code)
      assert.truthy(r.stderr:find("boom.lua:1: boom here", 1, true), r.stderr)
      assert.truthy(r.stderr:find("stack traceback", 1, true))
    end)

    it("takes the exit code from an unleashed.Error's kind", function()
      local script = dir .. "/missing.lua"
      write_file(script, "client.purchase_orders:get(unleashed.guid())\n")
      local r = run({ "run", script }, env)
      assert.equal(5, r.code, r.stderr)
      assert.truthy(r.stderr:find("^unleashed: "))
    end)

    it("reports a syntax error, exit 1", function()
      local script = dir .. "/syntax.lua"
      write_file(script, "print('unclosed'\n")
      local r = run({ "run", script }, env)
      assert.equal(1, r.code)
      assert.truthy(r.stderr:find("syntax.lua", 1, true))
    end)

    it("runs a script that never touches `client` without credentials", function()
      local script = dir .. "/plain.lua"
      write_file(script, "print(unleashed.sign('a', 'b'))\n")
      local r = run({ "run", script }, clean_env())
      assert.equal(0, r.code, r.stderr)
      assert.equal(unleashed.sign("a", "b") .. "\n", r.stdout)
    end)

    it("honours os.exit in the script", function()
      local script = dir .. "/exit.lua"
      write_file(script, "os.exit(42)\n")
      assert.equal(42, run({ "run", script }, clean_env()).code)
    end)
  end)

  describe("sandbox", function()
    it("runs the sandbox in its own process: a SIGTERM to it stops the server", function()
      local cmd = "exec sh -c " .. quote("echo $$; exec env -u UNLEASHED_API_ID -u UNLEASHED_API_KEY "
        .. quote(ROOT .. "/bin/unleashed") .. " sandbox --port 0 --seed 3")
      local p = assert(io.popen(cmd, "r"))
      local pid = tonumber(p:read("l"))
      local listening = p:read("l") or ""
      local port = listening:match("^listening on http://127%.0%.0%.1:(%d+)$")
      os.execute("kill -TERM " .. pid)
      local ok, how, code = p:close()
      assert.truthy(port, listening)
      assert.is_true(ok, tostring(how) .. " " .. tostring(code))
      -- nothing listens there any more: no child outlived the command
      local socket = require "socket"
      assert.is_nil((socket.connect("127.0.0.1", tonumber(port))))
    end)

    it("starts the sandbox with the given flags and it answers", function()
      local words = { "env", "-u UNLEASHED_API_ID", "-u UNLEASHED_API_KEY", quote(ROOT .. "/bin/unleashed"),
                      "sandbox", "--port", "0", "--seed", "7" }
      local cmd = "exec setsid sh -c " .. quote("echo $$; exec " .. table.concat(words, " "))
      local p = assert(io.popen(cmd, "r"))
      local pid = tonumber(p:read("l"))
      local listening = p:read("l") or ""
      local creds = p:read("l") or ""
      local url = listening:match("^listening on (http://127%.0%.0%.1:%d+)$")
      local id, key = creds:match("^credentials UNLEASHED_API_ID=(%S+) UNLEASHED_API_KEY=(%S+)$")
      local count
      if url and id then
        local c = unleashed.new { api_id = id, api_key = key, base_url = url }
        count = #c.purchase_orders:list { orderStatus = "Deleted" } + #c.purchase_orders:list()
        c:close()
      end
      os.execute("kill -TERM -" .. pid)
      p:close()
      assert.truthy(url, listening)
      assert.truthy(id, creds)
      assert.equal(7, count)
    end)
  end)

  -- ---- what a person meets ----------------------------------------------------------

  local function lines_of(text)
    local t = {}
    for line in text:gmatch("[^\n]+") do t[#t + 1] = line end
    return t
  end

  local function csv_of(args)
    local r = run(args, env)
    assert.equal(0, r.code, r.stderr)
    return (as_records(r.stdout)), r
  end

  describe("--supplier is one supplier, --supplier-prefix the API's prefix", function()
    it("ACME lists ACME's orders only; the prefix lists ACME2's too", function()
      client.purchase_orders:create {
        Supplier = { SupplierCode = "ACME2" }, OrderStatus = "Placed",
        PurchaseOrderLines = { bolts(1, 1) },
      }
      local exact = csv_of { "po", "list", "--format", "csv", "--supplier", "acme" }
      local prefix = csv_of { "po", "list", "--format", "csv", "--supplier-prefix", "ACME" }
      local want_exact, want_prefix = {}, {}
      for po in client.purchase_orders:each { supplierCode = "ACME" } do
        want_prefix[#want_prefix + 1] = po.Guid
        if po.Supplier.SupplierCode == "ACME" then want_exact[#want_exact + 1] = po.Guid end
      end
      assert.is_true(#want_exact > 0)
      assert.is_true(#want_prefix > #want_exact, "the sandbox should hold ACME2 orders too")
      assert.equal(#want_exact, #exact)
      for n, rec in ipairs(exact) do
        assert.equal("ACME", rec.SupplierCode)
        assert.equal(want_exact[n], rec.Guid)
      end
      assert.equal(#want_prefix, #prefix)
      local acme2 = 0
      for _, rec in ipairs(prefix) do if rec.SupplierCode == "ACME2" then acme2 = acme2 + 1 end end
      assert.is_true(acme2 > 0)
    end)

    it("--status takes several statuses, comma-separated or repeated", function()
      local want = client.purchase_orders:list { orderStatus = "Placed,Parked" }
      assert.is_true(#want > 0)
      local ways = { { "--status", "Placed,parked" }, { "--status", "placed", "--status", "Parked" } }
      for _, args in ipairs(ways) do
        local recs = csv_of { "po", "list", "--format", "csv", table.unpack(args) }
        assert.equal(#want, #recs, table.concat(args, " "))
        for n, po in ipairs(want) do assert.equal(po.Guid, recs[n].Guid) end
      end
    end)
  end)

  describe("amounts, currencies and quantities", function()
    it("CSV amounts have at least 2 decimals, the table shows each total's currency", function()
      local recs = csv_of { "po", "list", "--format", "csv" }
      for _, rec in ipairs(recs) do
        for _, name in ipairs { "SubTotal", "TaxTotal", "Total" } do
          assert.truthy(rec[name]:match("^%-?%d+%.%d%d+$"), name .. " " .. rec[name])
        end
      end
      local t = run({ "po", "list" }, env)
      for i, line in ipairs(lines_of(t.stdout)) do
        if i > 1 then assert.truthy(line:match(" %-?%d+%.%d%d+  %u%u%u$"), line) end
      end
    end)

    it("po get: totals with currency, prices at 4 places, integral quantities as integers, units", function()
      local po = client.purchase_orders:list { supplierCode = "ACME" }[1]
      local r = run({ "po", "get", po.OrderNumber }, env)
      assert.equal(0, r.code, r.stderr)
      local ccy = po.Currency.CurrencyCode
      local total = ("%.2f"):format(po.Total):gsub("%.", "%%.")
      assert.truthy(r.stdout:find(("Total:%%s+%s %s\n"):format(total, ccy)), r.stdout)
      local out = lines_of(r.stdout)
      local head
      for i, line in ipairs(out) do if line:match("^LINE ") then head = i end end
      assert.truthy(head, r.stdout)
      assert.truthy(out[head]:find("QTY%s+UNIT%s+RECEIVED%s+BASE QTY%s+UNIT PRICE"), out[head])
      for k, line in ipairs(po.PurchaseOrderLines) do
        local row = out[head + k]
        for _, q in ipairs{ line.PurchaseUnitOrderQuantity, line.OrderQuantity } do
          local qty = q == math.floor(q) and ("%d"):format(q) or tostring(q)
          assert.truthy(row:find(" " .. qty .. " ", 1, true), row)
        end
        assert.falsy(row:find("%d%.0 "), row)   -- never 153.0
        if line.UnitOfMeasure and line.UnitOfMeasure.Name then
          assert.truthy(row:find(" " .. line.UnitOfMeasure.Name .. " ", 1, true), row)
        end
        local price = row:match(" (%d+%.%d+)%s+%d+%.%d+%s+%d+%.%d+$")
        assert.truthy(price and price:match("%.%d%d%d%d+$"), row)
      end
    end)
  end)

  describe("CSV a spreadsheet opens safely", function()
    local po
    setup(function()
      po = client.purchase_orders:create {
        Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
        SupplierRef = "=cmd|' /C calc'!A0", Comments = "@SUM(1+1)",
        PurchaseOrderLines = { bolts(2, 1.5) },
      }
    end)

    it("quotes text that starts with = + - @ tab or CR, and --raw-csv writes it raw", function()
      local function find(recs)
        for _, rec in ipairs(recs) do if rec.Guid == po.Guid then return rec end end
      end
      local safe = find(csv_of { "po", "list", "--format", "csv", "--status", "Parked" })
      assert.equal("'=cmd|' /C calc'!A0", safe.SupplierRef)
      assert.equal("'@SUM(1+1)", safe.Comments)
      assert.equal(("%.2f"):format(po.Total), safe.Total)      -- amounts stay numbers, unquoted
      local raw = find(csv_of { "po", "list", "--format", "csv", "--status", "Parked", "--raw-csv" })
      assert.equal("=cmd|' /C calc'!A0", raw.SupplierRef)
      assert.equal("@SUM(1+1)", raw.Comments)
      local h = run({ "po", "list", "--help" }, clean_env())
      assert.truthy(h.stdout:find("--raw-csv", 1, true))
      assert.truthy(h.stdout:find("formula", 1, true))
    end)
  end)

  describe("tables", function()
    it("pad by display width and end without trailing spaces", function()
      client.purchase_orders:create {
        Supplier = { SupplierCode = "MÜLLER" }, OrderStatus = "Parked",
        PurchaseOrderLines = { bolts(1, 2) },
      }
      local r = run({ "po", "list", "--status", "Parked" }, env)
      assert.equal(0, r.code, r.stderr)
      local out = lines_of(r.stdout)
      local col = utf8.len(out[1]:sub(1, out[1]:find("WAREHOUSE", 1, true) - 1))
      local muller = 0
      for _, line in ipairs(out) do
        assert.falsy(line:find("%s$"), "trailing space: " .. line)
        local at = line:find("MAIN", 1, true) or line:find("WLG", 1, true) or line:find("CHC", 1, true)
          or line:find("RETURNS", 1, true) or line:find("WAREHOUSE", 1, true)
        if at then assert.equal(col, utf8.len(line:sub(1, at - 1)), line) end
        if line:find("MÜLLER", 1, true) then muller = muller + 1 end
      end
      assert.is_true(muller > 0)
    end)
  end)

  describe("order numbers", function()
    it("match in any case, with one call", function()
      sb:reset()
      local r = run({ "po", "get", "po-00000016" }, env)
      assert.equal(0, r.code, r.stderr)
      assert.truthy(r.stdout:find("PO-00000016", 1, true))
      local calls = sb:stats()
      assert.equal(1, calls.Total)
    end)
  end)

  describe("po create", function()
    local dir
    setup(function() dir = tmpdir() end)
    teardown(function() os.execute("rm -rf " .. quote(dir)) end)

    local function posts()
      local n = 0
      for call, k in pairs(sb:stats().Calls) do if call:match("^POST ") then n = n + k end end
      return n
    end

    it("from CSV: one order per supplier (or Order), --dry-run prints the requests, sends none", function()
      local path = dir .. "/orders.csv"
      write_file(path, "Order,SupplierCode,ProductCode,Quantity,UnitPrice,UnitOfMeasure,Comments\r\n"
        .. "a,ACME,BOLT M8 #10,10,0.35,,first\r\n"
        .. "a,ACME,BOLT M8 #10,5,0.4,,first\r\n"
        .. "b,ACME,BOLT M8 #10,1,2,,second\r\n")
      sb:reset()
      local dry = run({ "po", "create", path, "--dry-run", "--status", "Placed" }, env)
      assert.equal(0, dry.code, dry.stderr)
      assert.equal(0, posts())
      local guids = {}
      for g in dry.stdout:gmatch("POST /PurchaseOrders/(%x+%-[%x%-]+)\n") do guids[#guids + 1] = g end
      assert.equal(2, #guids, dry.stdout)
      local bodies = {}
      for body in (dry.stdout .. "POST "):gmatch("\n({.-\n})\n?POST ") do
        bodies[#bodies + 1] = cjson.decode(body)
      end
      assert.equal(2, #bodies, dry.stdout)
      assert.equal(2, #bodies[1].PurchaseOrderLines)
      assert.equal("Placed", bodies[1].OrderStatus)
      assert.equal(3.5, bodies[1].PurchaseOrderLines[1].LineTotal)   -- priced: 10 x 0.35
      assert.equal(5.5, bodies[1].SubTotal)
      assert.truthy(dry.stderr:find("nothing sent", 1, true))

      local real = run({ "po", "create", path }, env)
      assert.equal(0, real.code, real.stderr)
      assert.equal(2, posts())
      local numbers = {}
      for n in real.stdout:gmatch("created (PO%-%d+)") do numbers[#numbers + 1] = n end
      assert.equal(2, #numbers)
      local first = client.purchase_orders:get(numbers[1])
      assert.equal("Parked", first.OrderStatus)
      assert.equal("first", first.Comments)
      assert.equal(2, #first.PurchaseOrderLines)
    end)

    it("from JSON (one order or an array, or stdin), as --format json", function()
      local path = dir .. "/orders.json"
      write_file(path, cjson.encode {
        { Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked", SupplierRef = "json-1",
          PurchaseOrderLines = { bolts(3, 1) } },
        { Supplier = { SupplierCode = "ACME" }, OrderStatus = "Placed", SupplierRef = "json-2",
          PurchaseOrderLines = { bolts(4, 1) } },
      })
      local r = run({ "po", "create", path, "--format", "json" }, env)
      assert.equal(0, r.code, r.stderr)
      local made = cjson.decode(r.stdout)
      assert.equal(2, #made)
      assert.equal("json-2", made[2].SupplierRef)
      assert.equal("Placed", client.purchase_orders:get(made[2].OrderNumber).OrderStatus)
      local one = dir .. "/one.json"
      write_file(one, '{"Supplier":{"SupplierCode":"ACME"},"OrderStatus":"Parked","PurchaseOrderLines":['
        .. '{"Product":{"ProductCode":"BOLT M8 #10"},"OrderQuantity":1,"UnitPrice":1}]}')
      local s = run({ "po", "create", "-" }, env, { stdin = one })
      assert.equal(0, s.code, s.stderr)
      assert.truthy(s.stdout:match("^created PO%-%d+"), s.stdout)
    end)

    it("refuses a file with a bad order, naming each problem by record and product, sends nothing", function()
      local path = dir .. "/bad.csv"
      write_file(path, "SupplierCode,ProductCode,Quantity,UnitPrice\n"
        .. "ACME,BOLT M8 #10,1,1\n"
        .. "ACME,BOLT M8 #10,lots,1\n"
        .. "ACME2,BOLT M8 #10,-3,1\n")
      sb:reset()
      local r = run({ "po", "create", path }, env)
      assert.equal(4, r.code, r.stderr)
      assert.truthy(r.stderr:find(path .. ' record 2: Quantity must be a number, got "lots"', 1, true),
        r.stderr)
      assert.equal(0, posts())
      write_file(path, "SupplierCode,ProductCode,Quantity,UnitPrice\n"
        .. "ACME,BOLT M8 #10,1,1\n"
        .. "ACME2,BOLT M8 #10,-3,1\n")
      local r2 = run({ "po", "create", path }, env)
      assert.equal(4, r2.code, r2.stderr)
      local where = path .. " record 2 (ProductCode BOLT M8 #10): OrderQuantity: must be greater than 0"
      assert.truthy(r2.stderr:find(where, 1, true), r2.stderr)
      local unknown = dir .. "/unknown.csv"
      write_file(unknown, "SupplierCode,ProductCode,Qty,UnitPrice\nACME,X,1,1\n")
      local r3 = run({ "po", "create", unknown }, env)
      assert.equal(4, r3.code)
      assert.truthy(r3.stderr:find('unknown column "Qty"', 1, true), r3.stderr)
      assert.equal(0, posts())
    end)
  end)

  describe("po update, place, add-line, costs, delete", function()
    it("take an order through its life from the shell", function()
      local po = client.purchase_orders:create {
        Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
        PurchaseOrderLines = { bolts(2, 1.5) },
      }
      local u = run({ "po", "update", po.OrderNumber, "--comments", "call first",
                      "--delivery-date", "2026-12-01", "--supplier-ref", "R-1" }, env)
      assert.equal(0, u.code, u.stderr)
      assert.equal(po.OrderNumber .. " updated: status Parked, delivery 2026-12-01\n", u.stdout)
      local now = sb:json("GET", "/PurchaseOrders/" .. po.Guid)
      assert.equal("call first", now.Comments)
      assert.equal("R-1", now.SupplierRef)

      local a = run({ "po", "add-line", po.Guid, "--product", "BOLT M8 #10", "--quantity", "4",
                      "--price", "2.5", "--discount", "0.1" }, env)
      assert.equal(0, a.code, a.stderr)
      assert.truthy(a.stdout:find(po.OrderNumber .. ": line 2 added: BOLT M8 #10  qty 4", 1, true), a.stdout)
      assert.truthy(a.stdout:find("line total 9.00 NZD", 1, true), a.stdout)
      assert.equal(2, #sb:json("GET", "/PurchaseOrders/" .. po.Guid).PurchaseOrderLines)

      local p = run({ "po", "place", po.OrderNumber:lower() }, env)
      assert.equal(0, p.code, p.stderr)
      assert.equal(po.OrderNumber .. " placed: status Placed\n", p.stdout)
      assert.equal("Placed", sb:json("GET", "/PurchaseOrders/" .. po.Guid).OrderStatus)

      local d = run({ "po", "delete", po.OrderNumber }, env)
      assert.equal(0, d.code, d.stderr)
      assert.equal(po.OrderNumber .. " deleted: status Deleted\n", d.stdout)
    end)

    it("po costs lists an order's costs as a table, CSV and JSON", function()
      local costed
      for po in client.purchase_orders:each { orderStatus = "Costed" } do costed = costed or po end
      local costs = costed:costs()
      assert.is_true(#costs > 0)
      local t = run({ "po", "costs", costed.OrderNumber }, env)
      assert.equal(0, t.code, t.stderr)
      assert.truthy(t.stdout:match("^REFERENCE%s+SUPPLIER"), t.stdout)
      assert.equal(#costs + 1, #lines_of(t.stdout))
      local recs = csv_of { "po", "costs", costed.OrderNumber, "--format", "csv" }
      assert.equal(#costs, #recs)
      for k, c in ipairs(costs) do
        assert.equal(c.Reference, recs[k].Reference)
        assert.is_true(num_equal(recs[k].Cost, c.Cost))
        assert.truthy(recs[k].Cost:match("%.%d%d$"))
      end
      local j = run({ "po", "costs", costed.Guid, "--format", "json" }, env)
      assert.equal(#costs, #cjson.decode(j.stdout))
    end)
  end)

  describe("client options and --verbose", function()
    it("--verbose logs each attempt (method, path, status, ms), never the key or a signature", function()
      local r = run({ "--verbose", "po", "list", "--format", "csv", "--page-size", "20" }, env)
      assert.equal(0, r.code, r.stderr)
      local pages = math.ceil(#client.purchase_orders:list() / 20)
      local logged = 0
      for line in r.stderr:gmatch("[^\n]+") do
        assert.truthy(line:match("^unleashed: GET /PurchaseOrders[/%w]* %-> 200 in %d+%.%d ms$"), line)
        logged = logged + 1
      end
      assert.equal(pages, logged)
      assert.falsy(r.stderr:find(sb.api_key, 1, true))
      assert.falsy(r.stderr:find(unleashed.sign("pageSize=20", sb.api_key), 1, true))
      -- after the subcommand too
      local g = run({ "po", "get", "PO-00000002", "--verbose" }, env)
      assert.truthy(g.stderr:find("unleashed: GET /PurchaseOrders -> 200", 1, true), g.stderr)
    end)

    it("--timeout and --retries reach the client: one short attempt at a slow server, exit 6", function()
      local slow = sandbox.start { seed = 5, latency_ms = 3000 }
      local e = clean_env { UNLEASHED_API_ID = slow.api_id, UNLEASHED_API_KEY = slow.api_key,
                            UNLEASHED_BASE_URL = slow.base_url }
      local r = run({ "--timeout", "0.2", "--retries", "0", "--verbose", "po", "list" }, e)
      slow:stop()
      assert.equal(6, r.code, r.stderr)
      assert.truthy(r.stderr:find("-> timeout in", 1, true), r.stderr)
      local _, attempts = r.stderr:gsub("%-> timeout", "")
      assert.equal(1, attempts)
      local c = run({ "po", "list", "--concurrency", "8", "--format", "csv", "--page-size", "5" }, env)
      assert.equal(0, c.code, c.stderr)
    end)

    it("warns on stderr when SSLKEYLOGFILE is set, and only then", function()
      local e = {}
      for k, v in pairs(env) do e[k] = v end
      e.SSLKEYLOGFILE = "/tmp/keys.log"
      local r = run({ "po", "list", "--format", "csv" }, e)
      assert.equal(0, r.code)
      assert.truthy(r.stderr:find("unleashed: warning: SSLKEYLOGFILE is set (/tmp/keys.log)", 1, true),
        r.stderr)
      assert.truthy(r.stderr:find("TLS secrets", 1, true))
      assert.equal("", run({ "po", "list", "--format", "csv" }, env).stderr)
    end)
  end)

  describe("Ctrl-C", function()
    it("during po list exits 130 with one line and no traceback", function()
      local slow = sandbox.start { seed = 30, latency_ms = 300 }
      local out, err = os.tmpname(), os.tmpname()
      local words = { "env", "-u UNLEASHED_PROFILE", "UNLEASHED_API_ID=" .. quote(slow.api_id),
                      "UNLEASHED_API_KEY=" .. quote(slow.api_key),
                      "UNLEASHED_BASE_URL=" .. quote(slow.base_url),
                      quote(ROOT .. "/bin/unleashed"), "po", "list", "--page-size", "1", "--concurrency", "1",
                      "--format", "csv" }
      local p = assert(io.popen("sh -c " .. quote("echo $$; exec " .. table.concat(words, " ") .. " >"
        .. quote(out) .. " 2>" .. quote(err) .. " </dev/null"), "r"))
      local pid = tonumber(p:read("l"))
      os.execute("sleep 1")
      os.execute("kill -INT " .. pid)
      local _, how, code = p:close()
      slow:stop()
      local stderr = read_all(err)
      local stdout = read_all(out)
      os.remove(out)
      os.remove(err)
      assert.equal("exit", how)
      assert.equal(130, code, stderr)
      assert.equal("unleashed: interrupted\n", stderr)
      assert.truthy(stdout:find("^OrderNumber,"))   -- it was listing
    end)
  end)

  describe("the progress bar", function()
    it("takes the terminal's width and redraws at the new width after a resize", function()
      local slow = sandbox.start { seed = 60, latency_ms = 150 }
      local out = os.tmpname()
      local inner = table.concat({ "stty cols 40 rows 20;", "(sleep 1.3; stty cols 72 </dev/tty) &",
        "env -u UNLEASHED_PROFILE", "UNLEASHED_API_ID=" .. quote(slow.api_id),
        "UNLEASHED_API_KEY=" .. quote(slow.api_key), "UNLEASHED_BASE_URL=" .. quote(slow.base_url),
        quote(ROOT .. "/bin/unleashed"), "po list --page-size 3 --concurrency 1 --format csv >/dev/null;",
        "wait" }, " ")
      os.execute("script -qec " .. quote(inner) .. " /dev/null </dev/null >" .. quote(out))
      slow:stop()
      local text = read_all(out)
      os.remove(out)
      local narrow, wide = 0, 0
      for bar in text:gmatch("\r(%[[#%.]+%] %d+/%d+ pages)") do
        local w = #bar
        assert.is_true(w <= 71, bar)
        if w <= 39 then narrow = narrow + 1 else wide = wide + 1 end
      end
      assert.is_true(narrow > 0, "no bar at 40 columns: " .. text:sub(1, 300))
      assert.is_true(wide > 0, "no bar at the new width: " .. text:sub(-300))
      -- wiped at the end: the last thing written is the erase
      assert.truthy(text:find("\r\27%[K[^\r]*$"), text:sub(-80))
    end)
  end)

  describe("profiles", function()
    local function write_profile(mode, body)
      assert(os.execute("mkdir -p " .. quote(home .. "/.config/unleashed")))
      local path = home .. "/.config/unleashed/credentials"
      os.execute("rm -rf " .. quote(path))
      write_file(path, body)
      assert(os.execute(("chmod %s %s"):format(mode, quote(path))))
      return path
    end

    it("a # comment after a value is not part of it", function()
      local path = write_profile("600", ("[acme]\napi_id = %s   # the id\napi_key = %s ; the key\n"
        .. "base_url = %s # local\n"):format(sb.api_id, sb.api_key, sb.base_url))
      local r = run({ "--profile", "acme", "po", "get", "PO-00000003" }, clean_env())
      assert.equal(0, r.code, r.stderr)
      os.remove(path)
    end)

    it("names the line of a repeated section, an unknown key, a repeated key", function()
      for _, case in ipairs {
        { "[acme]\napi_id = a\n\n[acme]\napi_key = b\n",
          "line 4: section [acme] is given twice (first on line 1)" },
        { "[acme]\napi_id = a\napi-key = b\n", 'line 3: unknown key "api-key"' },
        { "[acme]\napi_id = a\napi_id = b\n", 'line 3: key "api_id" is given twice' },
      } do
        local path = write_profile("600", case[1])
        local r = run({ "--profile", "acme", "po", "list" }, clean_env())
        assert.equal(3, r.code)
        assert.truthy(r.stderr:find(path .. " " .. case[2], 1, true), r.stderr)
        os.remove(path)
      end
      local path = write_profile("600", "[acme]\napi-key = b\n")
      local hint = run({ "--profile", "acme", "po", "list" }, clean_env())
      assert.truthy(hint.stderr:find("did you mean api_key", 1, true), hint.stderr)
      os.remove(path)
    end)

    it("a directory in the file's place gets its own message", function()
      local path = home .. "/.config/unleashed/credentials"
      os.execute("rm -rf " .. quote(path))
      assert(os.execute("mkdir -p " .. quote(path)))
      local r = run({ "--profile", "acme", "po", "list" }, clean_env())
      assert.equal(3, r.code)
      assert.truthy(r.stderr:find("the profile file " .. path .. " is a directory", 1, true), r.stderr)
      os.execute("rm -rf " .. quote(path))
    end)

    it("names UNLEASHED_API_KEY when only the id is set", function()
      local r = run({ "po", "list" }, clean_env { UNLEASHED_API_ID = sb.api_id })
      assert.equal(3, r.code)
      assert.truthy(r.stderr:find("UNLEASHED_API_KEY is not set (UNLEASHED_API_ID is)", 1, true), r.stderr)
    end)
  end)

  describe("run: where a script failed", function()
    local dir
    setup(function() dir = tmpdir() end)
    teardown(function() os.execute("rm -rf " .. quote(dir)) end)

    it("prints the script's file and line for an uncaught library error", function()
      local script = dir .. "/where.lua"
      write_file(script, "local n = 0\n\nlocal po = client.purchase_orders:get(unleashed.guid())\n"
        .. "print(po, n)\n")
      local r = run({ "run", script }, env)
      assert.equal(5, r.code)
      local want = "^unleashed: " .. script:gsub("%p", "%%%0")
        .. ":3: not found error %(404%) GET /PurchaseOrders/"
      assert.truthy(r.stderr:find(want), r.stderr)
      assert.falsy(r.stderr:find("purchase_orders.lua", 1, true), r.stderr)
    end)

    it("a closed client: a `closed` error at the script's line, exit 1, no library position", function()
      local script = dir .. "/closed.lua"
      write_file(script, "client:close()\nlocal taxes = client:request('GET', '/Taxes')\nprint(taxes)\n")
      local r = run({ "run", script }, env)
      assert.equal(1, r.code)
      assert.truthy(r.stderr:find(":2: closed error GET /Taxes: the client is closed", 1, true), r.stderr)
      assert.falsy(r.stderr:find("client.lua", 1, true), r.stderr)
    end)

    it("a validation error names its call: never a bare method", function()
      local script = dir .. "/bad.lua"
      write_file(script, "client.purchase_orders:get('{not-a-guid-nor-a-number}')\n")
      local r = run({ "run", script }, env)
      assert.equal(4, r.code)
      assert.truthy(r.stderr:find(":1: validation error GET /PurchaseOrders: ref: must be a GUID", 1, true),
        r.stderr)
    end)
  end)

  it("never printed the API key in any output", function()
    assert.is_true(#outputs > 40)
    for _, out in ipairs(outputs) do
      assert.falsy(out:find(sb.api_key, 1, true))
    end
  end)
end)
