-- `unleashed po sync` and `unleashed po report`, run as processes against a
-- sandbox: the mirror's tables against the API (every order and line, typed
-- columns, each order's JSON), a second run that writes nothing, changes and
-- deletions applied, costs, --since and --full, the example report through
-- the command and through sqlite3, clear errors for a locked, read-only or
-- corrupt file with nothing written, and the key never in the file.
local sandbox = require "support.sandbox"
local files = require "support.files"
local unleashed = require "unleashed"
local sqlite = require "unleashed.sqlite"
local core = require "unleashed.core"
local cjson = require "cjson"

local ROOT = os.getenv("UNLEASHED_ROOT") or "."
local quote = sandbox.quote
local read_all, tmpdir = files.read_all, files.tmpdir
local REPORT = ROOT .. "/examples/month_end_by_supplier.sql"
local ALL = "Parked,Placed,Unapproved,Costed,Receipted,Complete,Deleted"

-- Runs bin/unleashed with the sandbox's credentials and nothing else of the
-- caller's UNLEASHED_* environment. opts.tty runs it on a terminal;
-- opts.prefix puts words before it (another user); opts.root another tree.
local function run(sb, args, opts)
  opts = opts or {}
  local words = { "env", "-u UNLEASHED_PROFILE", "-u XDG_CONFIG_HOME",
                  "UNLEASHED_API_ID=" .. quote(sb.api_id), "UNLEASHED_API_KEY=" .. quote(sb.api_key),
                  "UNLEASHED_BASE_URL=" .. quote(sb.base_url) }
  for k, v in pairs(opts.env or {}) do words[#words + 1] = k .. "=" .. quote(v) end
  for _, w in ipairs(opts.prefix or {}) do words[#words + 1] = w end
  words[#words + 1] = "lua5.4"
  words[#words + 1] = quote((opts.root or ROOT) .. "/bin/unleashed")
  for _, a in ipairs(args) do words[#words + 1] = quote(a) end
  local out, err = os.tmpname(), os.tmpname()
  local line = table.concat(words, " ")
  local cmd = line .. " </dev/null >" .. quote(out) .. " 2>" .. quote(err)
  if opts.tty then
    cmd = "script -qec " .. quote(line) .. " /dev/null </dev/null >" .. quote(out) .. " 2>" .. quote(err)
  end
  local _, how, code = os.execute(cmd)
  local r = { code = how == "exit" and code or 128 + code, stdout = read_all(out), stderr = read_all(err) }
  os.remove(out)
  os.remove(err)
  return r
end

local function ok_run(sb, args, opts)
  local r = run(sb, args, opts)
  assert(r.code == 0, ("unleashed %s: exit %d\n%s%s"):format(table.concat(args, " "), r.code, r.stdout,
                                                              r.stderr))
  return r
end

local function query(path, sql, ...)
  local db <close> = sqlite.open(path, { readonly = true })
  local st <close> = db:prepare(sql)
  local rows = {}
  for row in st:rows(...) do rows[#rows + 1] = row end
  return rows
end

local function scalar(path, sql, ...)
  return query(path, sql, ...)[1][1]
end

local function files_of(path)
  return read_all(path) .. read_all(path .. "-wal") .. read_all(path .. "-shm")
end

local function line(n)
  return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = n, UnitPrice = 2 }
end

local function near(a, b) return a == b or (a and b and math.abs(a - b) < 1e-6) end

describe("po sync", function()
  local sb, client, dir
  setup(function()
    sb = sandbox.start{ seed = 300, admin = true }
    client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
    dir = tmpdir()
  end)
  teardown(function()
    client:close()
    sb:stop()
    os.execute("rm -rf " .. quote(dir))
  end)

  -- The whole mirror against the API's listing (every status).
  local function assert_equal_to_server(db)
    local orders, lines = 0, 0
    for po in client.purchase_orders:each({ orderStatus = ALL }, { page_size = 1000 }) do
      orders = orders + 1
      local row = query(db, [[SELECT order_number, status, supplier_code, warehouse_code, currency,
        order_date, total, sub_total, tax_total, last_modified_on, last_modified_ms, json
        FROM orders WHERE guid = ?]], po.Guid)[1]
      assert(row, "the mirror lacks " .. po.OrderNumber)
      assert.same({ po.OrderNumber, po.OrderStatus, po.Supplier.SupplierCode, po.Warehouse.WarehouseCode,
                    po.Currency.CurrencyCode, po.OrderDate, po.LastModifiedOn },
                  { row[1], row[2], row[3], row[4], row[5], row[6], row[10] })
      assert.is_true(near(po.Total, row[7]) and near(po.SubTotal, row[8]) and near(po.TaxTotal, row[9]))
      assert.equal(core.parse_date(po.LastModifiedOn), row[11])
      local j = cjson.decode(row[12])
      assert.equal(po.Guid, j.Guid)
      assert.equal(po.LastModifiedOn, j.LastModifiedOn)
      assert.equal(#po.PurchaseOrderLines, #j.PurchaseOrderLines)
      local mlines = query(db, [[SELECT guid, line_number, product_code, order_quantity, unit_price,
        line_total, line_tax FROM lines WHERE order_guid = ? ORDER BY line_number]], po.Guid)
      assert.equal(#po.PurchaseOrderLines, #mlines)
      for i, l in ipairs(po.PurchaseOrderLines) do
        local m = mlines[i]
        assert.same({ l.Guid, l.LineNumber, l.Product.ProductCode }, { m[1], m[2], m[3] })
        assert.is_true(near(l.OrderQuantity, m[4]) and near(l.UnitPrice, m[5]) and near(l.LineTotal, m[6])
                       and near(l.LineTax, m[7]))
      end
      lines = lines + #po.PurchaseOrderLines
    end
    assert.equal(orders, scalar(db, "SELECT count(*) FROM orders"))
    assert.equal(orders, scalar(db, "SELECT count(DISTINCT guid) FROM orders"))
    assert.equal(lines, scalar(db, "SELECT count(*) FROM lines"))
    return orders
  end

  it("mirrors every order and line, Deleted ones too, in typed columns with each order's JSON", function()
    local db = dir .. "/first.sqlite"
    local r = ok_run(sb, { "po", "sync", "--db", db, "--page-size", "100" })
    local orders = assert_equal_to_server(db)
    assert.matches(("%d orders written"):format(orders), r.stdout, 1, true)
    assert.is_true(scalar(db, "SELECT count(*) FROM orders WHERE status = 'Deleted'") > 0)
    assert.equal("integer", scalar(db, "SELECT typeof(last_modified_ms) FROM orders LIMIT 1"))
    assert.equal("real", scalar(db, "SELECT typeof(total) FROM orders LIMIT 1"))
    assert.equal("1", scalar(db, "SELECT value FROM mirror_meta WHERE key = 'schema_version'"))
    assert.matches("^unleashed%-changes/1 ",
                   scalar(db, "SELECT value FROM mirror_meta WHERE key = 'checkpoint'"))
  end)

  it("documents every table and column it makes", function()
    local db = dir .. "/doc.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
    local doc = read_all(ROOT .. "/docs/reference.md")
    local schema = doc:match("\n## The mirror.s schema\n(.-)\n## ")
    assert.is_truthy(schema, "docs/reference.md has no section on the mirror's schema")
    for _, t in ipairs{ "mirror_meta", "orders", "lines", "costs" } do
      assert.is_truthy(schema:find("`" .. t .. "`", 1, true), "table " .. t .. " undocumented")
      for _, col in ipairs(query(db, "SELECT name, type FROM pragma_table_info(?)", t)) do
        assert.is_truthy(schema:find("| `" .. col[1] .. "` | " .. col[2], 1, true),
          ("column %s.%s (%s) undocumented"):format(t, col[1], col[2]))
      end
    end
  end)

  it("writes nothing on a second run with nothing changed, in one call", function()
    local db = dir .. "/second.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
    local before = files_of(db)
    sb:reset()
    local r = ok_run(sb, { "po", "sync", "--db", db })
    assert.matches("0 orders written", r.stdout, 1, true)
    assert.equal(1, sb:stats().Total)
    assert.is_true(before == files_of(db), "the second run changed the file")
  end)

  it("applies changes, line changes and deletions on the next run", function()
    local db = dir .. "/changes.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
    local parked = client.purchase_orders:page(1, { orderStatus = "Parked", pageSize = 3 }).items
    local placed = client.purchase_orders:page(1, { orderStatus = "Placed", pageSize = 1 }).items
    parked[1]:update{ Comments = "mirrored change" }
    local added = parked[2]:add_line(line(7))
    parked[3]:delete()
    placed[1]:receipt()
    local created = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" },
      OrderStatus = "Parked", PurchaseOrderLines = { line(1), line(2) } }
    local r = ok_run(sb, { "po", "sync", "--db", db })
    assert.matches("5 orders written (1 Deleted)", r.stdout, 1, true)
    assert.equal("Deleted", scalar(db, "SELECT status FROM orders WHERE guid = ?", parked[3].Guid))
    assert.equal("Receipted", scalar(db, "SELECT status FROM orders WHERE guid = ?", placed[1].Guid))
    assert.equal(1, scalar(db, "SELECT count(*) FROM lines WHERE guid = ?", added.Guid))
    assert.equal(2, scalar(db, "SELECT count(*) FROM lines WHERE order_guid = ?", created.Guid))
    local json = scalar(db, "SELECT json FROM orders WHERE guid = ?", parked[1].Guid)
    assert.matches("mirrored change", json, 1, true)
    parked[2]:delete_line(added.Guid)
    ok_run(sb, { "po", "sync", "--db", db })
    assert.equal(0, scalar(db, "SELECT count(*) FROM lines WHERE guid = ?", added.Guid))
    assert_equal_to_server(db)
  end)

  it("draws a progress bar on a terminal, and none otherwise", function()
    local db = dir .. "/tty.sqlite"
    local r = ok_run(sb, { "po", "sync", "--db", db, "--page-size", "20" }, { tty = true })
    assert.matches("%] %d+/%d+ pages", r.stdout)
    local plain = ok_run(sb, { "po", "sync", "--db", dir .. "/notty.sqlite", "--page-size", "20" })
    assert.is_nil(plain.stderr:find("pages", 1, true))
  end)

  it("keeps costs when asked, and from then on", function()
    local db = dir .. "/costs.sqlite"
    ok_run(sb, { "po", "sync", "--db", db, "--costs" })
    local checked = 0
    for po in client.purchase_orders:each{ orderStatus = "Receipted,Costed,Complete" } do
      local costs = po:costs()
      local rows = query(db, "SELECT reference, cost, currency FROM costs WHERE order_guid = ? "
                             .. "ORDER BY position", po.Guid)
      assert.equal(#costs, #rows)
      for i, c in ipairs(costs) do
        assert.equal(c.Reference, rows[i][1])
        assert.is_true(near(c.Cost, rows[i][2]))
      end
      checked = checked + #costs
    end
    assert.is_true(checked > 0)
    local placed = client.purchase_orders:page(1, { orderStatus = "Placed", pageSize = 1 }).items[1]
    placed:receipt()
    ok_run(sb, { "po", "sync", "--db", db })
    assert.equal(#placed:costs(), scalar(db, "SELECT count(*) FROM costs WHERE order_guid = ?", placed.Guid))
    -- a mirror made without costs takes them only with --full
    local plain = dir .. "/nocosts.sqlite"
    ok_run(sb, { "po", "sync", "--db", plain })
    local r = run(sb, { "po", "sync", "--db", plain, "--costs" })
    assert.equal(2, r.code)
    assert.matches("without costs: run once with %-%-full", r.stderr)
    ok_run(sb, { "po", "sync", "--db", plain, "--costs", "--full" })
    assert.is_true(scalar(plain, "SELECT count(*) FROM costs") > 0)
  end)

  it("reads from --since DATE, and rebuilds with --full, dropping what the account does not list", function()
    local db = dir .. "/since.sqlite"
    local t0 = core.now_ms()
    local po = client.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
                                              PurchaseOrderLines = { line(3) } }
    local r = ok_run(sb, { "po", "sync", "--db", db, "--since", os.date("!%Y-%m-%dT%H:%M:%S", t0 // 1000) })
    assert.equal(1, scalar(db, "SELECT count(*) FROM orders WHERE guid = ?", po.Guid))
    local some = scalar(db, "SELECT count(*) FROM orders")
    assert.is_true(some >= 1 and some < 50, r.stdout)
    do
      local w <close> = sqlite.open(db)
      w:exec([[INSERT INTO orders (guid, order_number, status, last_modified_ms, json)
               VALUES ('00000000-0000-4000-8000-000000000000', 'PO-GHOST', 'Placed', 0, '{}')]])
    end
    ok_run(sb, { "po", "sync", "--db", db, "--full" })
    assert.equal(0, scalar(db, "SELECT count(*) FROM orders WHERE order_number = 'PO-GHOST'"))
    assert_equal_to_server(db)
    local bad = run(sb, { "po", "sync", "--db", db, "--since", "yesterday" })
    assert.equal(2, bad.code)
    assert.equal(2, run(sb, { "po", "sync" }).code)
    assert.equal(2, run(sb, { "po", "sync", "--db", db, "--page-size", "0" }).code)
  end)

  it("refuses a file that mirrors another account", function()
    local db = dir .. "/account.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
    local other <close> = sandbox.start{ seed = 20 }
    local r = run(other, { "po", "sync", "--db", db })
    assert.equal(1, r.code)
    assert.matches("mirrors another account", r.stderr)
    other:stop()
  end)

  it("says a locked file is locked, and writes nothing", function()
    local db = dir .. "/locked.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
    local changed = client.purchase_orders:page(1, { orderStatus = "Parked", pageSize = 1 }).items[1]
    changed:update{ Comments = "waits for the lock" }
    local checkpoint = scalar(db, "SELECT value FROM mirror_meta WHERE key = 'checkpoint'")
    local holder = sqlite.open(db)
    holder:exec("BEGIN EXCLUSIVE")
    local r = run(sb, { "po", "sync", "--db", db })
    holder:exec("ROLLBACK")
    holder:close()
    assert.equal(1, r.code)
    assert.matches("locked by another process", r.stderr)
    assert.matches("nothing was written", r.stderr)
    assert.is_nil(r.stderr:find("traceback", 1, true))
    assert.equal(checkpoint, scalar(db, "SELECT value FROM mirror_meta WHERE key = 'checkpoint'"))
    local json = scalar(db, "SELECT json FROM orders WHERE guid = ?", changed.Guid)
    assert.is_nil(json:find("waits for the lock"))
    ok_run(sb, { "po", "sync", "--db", db })
    assert.matches("waits for the lock", scalar(db, "SELECT json FROM orders WHERE guid = ?", changed.Guid))
  end)

  it("says a read-only file is read-only, and writes nothing", function()
    local db = dir .. "/readonly.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
    local po = client.purchase_orders:page(1, { orderStatus = "Parked", pageSize = 1 }).items[1]
    po:update{ Comments = "not written" }
    assert(os.execute("chmod 0444 " .. quote(db)))
    os.remove(db .. "-wal")
    os.remove(db .. "-shm")
    local opts = {}
    if io.popen("id -u"):read("l") == "0" then
      -- Root writes anyway: the command runs as nobody, from a copy of the
      -- tree that nobody can read.
      local tree = tmpdir()
      local build
      for entry in package.cpath:gmatch("[^;]+") do
        local d = entry:match("^(.*)/%?%.so$")
        if d and io.open(d .. "/unleashed/core.so", "rb") then build = d break end
      end
      assert(build, "no build folder on package.cpath")
      local copy = "cp -r %s %s %s/ && mkdir -p %s/build && cp -r %s/unleashed %s/build/ && chmod -R a+rX %s"
      assert(os.execute(copy:format(quote(ROOT .. "/lua"), quote(ROOT .. "/bin"), quote(tree), quote(tree),
                                    quote(build), quote(tree), quote(tree))))
      assert(os.execute("chmod a+rx " .. quote(dir) .. " " .. quote(tree)))
      opts = { root = tree, prefix = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups" },
               env = { LUA_PATH = tree .. "/lua/?.lua;" .. tree .. "/lua/?/init.lua;;",
                       LUA_CPATH = tree .. "/build/?.so;;" } }
    end
    local before = files_of(db)
    local r = run(sb, { "po", "sync", "--db", db }, opts)
    assert.equal(1, r.code)
    assert.matches("read%-only", r.stderr)
    assert.matches("nothing was written", r.stderr)
    assert.is_true(before == files_of(db), "the file changed")
    assert(os.execute("chmod 0644 " .. quote(db)))
  end)

  it("says a corrupt file is corrupt, and writes nothing", function()
    local junk = dir .. "/junk.sqlite"
    files.write_file(junk, ("not a database at all\n"):rep(300))
    local before = read_all(junk)
    local r = run(sb, { "po", "sync", "--db", junk })
    assert.equal(1, r.code)
    assert.matches("not a SQLite database", r.stderr)
    assert.equal(before, read_all(junk))
    assert.is_nil(io.open(junk .. "-wal", "rb"))
    -- damaged pages inside a real mirror
    local db = dir .. "/damaged.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
    do
      local w <close> = sqlite.open(db)
      w:exec("PRAGMA wal_checkpoint(TRUNCATE)")
    end
    local text = read_all(db)
    local page = 16384
    local damaged = text:sub(1, 3 * page) .. ("\255"):rep(#text - 4 * page) .. text:sub(-page)
    files.write_file(db, damaged)
    r = run(sb, { "po", "sync", "--db", db, "--full" })
    assert.equal(1, r.code)
    assert.matches("corrupt", r.stderr)
    assert.equal(damaged, read_all(db))
    r = run(sb, { "po", "report", "--db", db, ROOT .. "/examples/month_end_by_supplier.sql" })
    assert.equal(1, r.code)
    assert.matches("corrupt", r.stderr)
  end)

  it("refuses another application's SQLite file before it sets or writes anything", function()
    -- one with tables of its own, one with an application_id of its own
    local tables, stamped = dir .. "/other-tables.sqlite", dir .. "/other-stamped.sqlite"
    do
      local o <close> = sqlite.open(tables)
      o:exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); "
             .. "INSERT INTO notes (text) VALUES ('mine')")
      local p <close> = sqlite.open(stamped)
      p:exec("PRAGMA application_id = 1234")
    end
    for _, db in ipairs{ tables, stamped } do
      local before = read_all(db)
      for _, args in ipairs{ { "po", "sync", "--db", db }, { "po", "report", "--db", db, REPORT } } do
        local r = run(sb, args)
        assert.equal(1, r.code)
        assert.matches("another application", r.stderr)
        assert.matches("not a mirror", r.stderr)
        assert.is_true(before == read_all(db), "the file changed")
        assert.is_nil(io.open(db .. "-wal", "rb"), "the journal mode was set")
      end
    end
    assert.matches("application_id 0x000004D2", run(sb, { "po", "sync", "--db", stamped }).stderr)
    -- a mirror says what it is in its header
    local db = dir .. "/stamped-mirror.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
    assert.equal(0x554E4C4D, scalar(db, "PRAGMA application_id"))
    assert.equal(1, scalar(db, "PRAGMA user_version"))
  end)

  it("names the folder that does not exist", function()
    local folder = dir .. "/no-such-folder"
    local r = run(sb, { "po", "sync", "--db", folder .. "/m.sqlite" })
    assert.equal(1, r.code)
    assert.is_truthy(r.stderr:find("the folder " .. folder .. " does not exist", 1, true), r.stderr)
    r = run(sb, { "po", "report", "--db", folder .. "/m.sqlite", REPORT })
    assert.equal(1, r.code)
    assert.is_truthy(r.stderr:find("the folder " .. folder .. " does not exist", 1, true), r.stderr)
  end)

  it("leaves no file behind when a first sync fails half-way, and keeps a mirror it did not make", function()
    -- two calls answered, then the monthly quota: the first page is written, the second refused
    local short <close> = sandbox.start{ seed = 300, quota = 2 }
    local db = dir .. "/half-built.sqlite"
    local r = run(short, { "po", "sync", "--db", db, "--page-size", "20" })
    assert.is_true(r.code ~= 0)
    assert.matches("quota error %(429%) GET /PurchaseOrders/Page/2", r.stderr)
    for _, suffix in ipairs{ "", "-wal", "-shm", "-journal" } do
      assert.is_nil(io.open(db .. suffix, "rb"), db .. suffix .. " was left behind")
    end
    -- an empty file made beforehand stays, empty
    files.write_file(db, "")
    assert.is_true(run(short, { "po", "sync", "--db", db, "--page-size", "20" }).code ~= 0)
    assert.equal("", read_all(db))
    assert.is_nil(io.open(db .. "-wal", "rb"))
    -- a mirror that existed keeps what it holds
    local kept = dir .. "/kept.sqlite"
    ok_run(sb, { "po", "sync", "--db", kept })
    local orders = scalar(kept, "SELECT count(*) FROM orders")
    assert.is_true(run(short, { "po", "sync", "--db", kept, "--full" }).code ~= 0)
    assert.equal(orders, scalar(kept, "SELECT count(*) FROM orders"))
    short:stop()
  end)

  it("never writes the API key into the file", function()
    local db = dir .. "/key.sqlite"
    ok_run(sb, { "po", "sync", "--db", db, "--costs" })
    local po = client.purchase_orders:page(1, { orderStatus = "Parked", pageSize = 1 }).items[1]
    po:update{ Comments = "key check" }
    ok_run(sb, { "po", "sync", "--db", db })
    local bytes = files_of(db)
    assert.is_true(#bytes > 100000)
    assert.is_nil(bytes:find(sb.api_key, 1, true))
    assert.is_nil(bytes:find(sb.api_key:sub(1, 16), 1, true))
    assert.is_truthy(bytes:find(sb.api_id:sub(1, 8), 1, true),
                     "the account is named by its id's first characters")
    assert.is_nil(bytes:find(sb.api_id, 1, true))
  end)
end)

describe("po report", function()
  local sb, client, dir, db
  setup(function()
    sb = sandbox.start{ seed = 400 }
    client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
    dir = tmpdir()
    db = dir .. "/report.sqlite"
    ok_run(sb, { "po", "sync", "--db", db })
  end)
  teardown(function()
    client:close()
    sb:stop()
    os.execute("rm -rf " .. quote(dir))
  end)

  -- The month-end figures worked out from the API's listing, apart from SQL.
  local function expected()
    local this_month = os.date("!%Y-%m")
    local month
    for po in client.purchase_orders:each{ orderStatus = ALL } do
      local m = po.OrderDate and po.OrderDate:sub(1, 7)
      if m and m < this_month and (not month or m > month) then month = m end
    end
    local groups = {}
    for po in client.purchase_orders:each{ orderStatus = ALL } do
      if po.OrderDate:sub(1, 7) == month and po.OrderStatus ~= "Parked" and po.OrderStatus ~= "Deleted" then
        local k = po.Supplier.SupplierCode .. "|" .. po.Currency.CurrencyCode
        local g = groups[k] or { orders = 0, total = 0, base = 0 }
        groups[k] = g
        g.orders = g.orders + 1
        g.total = g.total + po.Total
        g.base = g.base + (po.BCTotal or 0)
      end
    end
    return month, groups
  end

  local function parse_csv(text)
    local rows = {}
    for l in text:gmatch("([^\r\n]+)") do
      local row = {}
      for cell in (l .. ","):gmatch('("?[^"]-"?),') do row[#row + 1] = cell:gsub('^"(.*)"$', "%1") end
      rows[#rows + 1] = row
    end
    return rows
  end

  it("prints the example month-end report, the same through the command and through sqlite3", function()
    local sql = ROOT .. "/examples/month_end_by_supplier.sql"
    local month, groups = expected()
    assert.is_truthy(month)
    local r = ok_run(sb, { "po", "report", "--db", db, sql, "--format", "csv" })
    local rows = parse_csv(r.stdout)
    assert.same({ "month", "supplier", "currency", "orders", "received", "sub_total", "tax_total", "total",
                  "base_total" }, rows[1])
    local n = 0
    for k in pairs(groups) do n = n + 1 assert(k) end
    assert.equal(n, #rows - 1)
    for i = 2, #rows do
      local row = rows[i]
      assert.equal(month, row[1])
      local g = assert(groups[row[2] .. "|" .. row[3]], "no such group " .. row[2] .. " " .. row[3])
      assert.equal(g.orders, tonumber(row[4]))
      assert.is_true(math.abs(g.total - tonumber(row[8])) < 0.006, row[8])
      assert.is_true(math.abs(g.base - tonumber(row[9])) < 0.006, row[9])
    end
    local table_out = ok_run(sb, { "po", "report", "--db", db, sql })
    assert.matches("^month%s+supplier%s+currency", table_out.stdout)
    -- sqlite3 itself reads the same file and the same SQL to the same rows
    local out = os.tmpname()
    assert(os.execute("sqlite3 -csv -header " .. quote(db) .. " < " .. quote(sql) .. " > " .. quote(out)))
    local theirs = parse_csv(read_all(out))
    os.remove(out)
    assert.equal(#rows, #theirs)
    for i = 2, #rows do
      assert.same({ rows[i][1], rows[i][2], rows[i][3], rows[i][4] },
                  { theirs[i][1], theirs[i][2], theirs[i][3], theirs[i][4] })
      assert.is_true(math.abs(tonumber(rows[i][8]) - tonumber(theirs[i][8])) < 1e-6)
    end
    local json = cjson.decode(ok_run(sb, { "po", "report", "--db", db, sql, "--format", "json" }).stdout)
    assert.equal(#rows - 1, #json)
    assert.equal(month, json[1].month)
  end)

  it("prints as po list does: formulas inert in CSV unless --raw-csv, tables by display width", function()
    local sql = dir .. "/formula.sql"
    files.write_file(sql, [[SELECT '=HYPERLINK("x")' AS note, '-12.50' AS amount_text, 'Müller 東京' AS name,
      1.234567 AS rate, 5 AS n, NULL AS absent]])
    local lines = {}
    for l in ok_run(sb, { "po", "report", "--db", db, sql, "--format", "CSV" }).stdout:gmatch("[^\r\n]+") do
      lines[#lines + 1] = l
    end
    assert.same({ "note,amount_text,name,rate,n,absent",
                  [["'=HYPERLINK(""x"")",-12.50,Müller 東京,1.234567,5,]] }, lines)
    local raw = ok_run(sb, { "po", "report", "--db", db, sql, "--format", "csv", "--raw-csv" }).stdout
    assert.is_truthy(raw:find('\r\n"=HYPERLINK(""x"")",-12.50,', 1, true), raw)
    local r = run(sb, { "po", "report", "--db", db, sql, "--raw-csv" })
    assert.equal(2, r.code)
    assert.matches("%-%-raw%-csv goes with %-%-format csv", r.stderr)
    -- the table: numbers right-aligned with every decimal they have, wide text padded by its columns
    local t = ok_run(sb, { "po", "report", "--db", db, sql }).stdout
    local head, row = t:match("^([^\n]*)\n([^\n]*)\n$")
    assert.equal("note             amount_text  name             rate  n  absent", head)
    assert.equal([[=HYPERLINK("x")  -12.50       Müller 東京  1.234567  5]], row)
  end)

  it("opens the file read-only and names what is wrong", function()
    local bad = dir .. "/bad.sql"
    files.write_file(bad, "SELECT nope FROM orders")
    local r = run(sb, { "po", "report", "--db", db, bad })
    assert.equal(1, r.code)
    assert.matches("no such column: nope", r.stderr)
    files.write_file(bad, "DELETE FROM orders")
    r = run(sb, { "po", "report", "--db", db, bad })
    assert.equal(1, r.code)
    assert.matches("read%-only, and this statement writes", r.stderr)
    assert.is_true(scalar(db, "SELECT count(*) FROM orders") > 0)
    files.write_file(bad, "SELECT 1; SELECT 2")
    assert.matches("more than one SQL statement", run(sb, { "po", "report", "--db", db, bad }).stderr)
    r = run(sb, { "po", "report", "--db", dir .. "/missing.sqlite", bad })
    assert.equal(1, r.code)
    assert.matches("no such database file", r.stderr)
    assert.is_nil(io.open(dir .. "/missing.sqlite", "rb"))
    assert.equal(2, run(sb, { "po", "report", "--db", db }).code)
    assert.equal(2, run(sb, { "po", "report", "--db", db, bad, "--format", "xml" }).code)
  end)
end)
