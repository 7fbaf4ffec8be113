-- unleashed.sqlite, the binding the mirror writes through: values in and
-- out by type, statements reset after every call, errors that carry
-- SQLite's code, and lifetimes (a statement outliving its connection, two
-- connections at once, close called twice); and the writer, which writes
-- the mirror's pages on a thread of its own.
local sqlite = require "unleashed.sqlite"
local files = require "support.files"
local cjson = require "cjson"

local function fails(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok)
  return e
end

describe("unleashed.sqlite", function()
  local dir
  before_each(function() dir = files.tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("binds and returns nil, booleans, integers, floats and strings (embedded zeros too)", function()
    local db <close> = sqlite.open(":memory:")
    db:exec("CREATE TABLE t (a, b, c, d, e)")
    local ins <close> = db:prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)")
    assert.equal(1, ins:run(nil, true, 42, 2.5, "x\0y"))
    assert.equal(1, ins:run(false, 0, math.maxinteger, -0.125, ""))
    local sel <close> = db:prepare("SELECT a, b, c, d, e FROM t ORDER BY rowid")
    local rows = {}
    for r in sel:rows() do rows[#rows + 1] = r end
    assert.equal(2, #rows)
    assert.is_nil(rows[1][1])
    assert.same({ 1, 42, 2.5, "x\0y" }, { rows[1][2], rows[1][3], rows[1][4], rows[1][5] })
    assert.equal("integer", math.type(rows[1][3]))
    assert.same({ 0, 0, math.maxinteger, -0.125, "" }, rows[2])
    assert.same({ "a", "b", "c", "d", "e" }, sel:columns())
    local one <close> = db:prepare("SELECT c, e FROM t WHERE c = ?")
    assert.same({ 42, "x\0y" }, { one:first(42) })
    assert.equal(0, select("#", one:first(7)))
  end)

  it("resets a statement after each call, so it can run again at once", function()
    local db <close> = sqlite.open(":memory:")
    db:exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT);"
            .. "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    local st <close> = db:prepare("SELECT v FROM t WHERE k >= ? ORDER BY k")
    assert.equal("a", st:first(1))
    assert.equal("b", st:first(2))
    local it = st:rows(2)
    assert.same({ "b" }, it())
    -- a loop left early: the next call starts over
    local all = {}
    for r in st:rows(1) do all[#all + 1] = r[1] end
    assert.same({ "a", "b", "c" }, all)
    local ins <close> = db:prepare("INSERT INTO t VALUES (?, ?)")
    local e = fails(ins.run, ins, 1, "dup")
    assert.equal("CONSTRAINT", e.name)
    assert.equal(1, ins:run(4, "d"))
    assert.equal(1, db:changes())
  end)

  it("raises errors with SQLite's code, name and message", function()
    local db <close> = sqlite.open(":memory:")
    local e = fails(db.exec, db, "SELEC 1")
    assert.equal("ERROR", e.name)
    assert.matches("syntax error", e.message)
    assert.matches("^sqlite: .+ %(ERROR%)$", tostring(e))
    e = fails(db.prepare, db, "SELECT 1; SELECT 2")
    assert.matches("more than one SQL statement", e.message)
    local st <close> = db:prepare("SELECT ?   -- one value\n; ")
    e = fails(st.first, st)
    assert.matches("takes 1 values, got 0", tostring(e))
    e = fails(st.first, st, {})
    assert.matches("value 1 is a table", tostring(e))
    assert.equal(5, st:first(5))
  end)

  it("says which file is not a database, locked, or read-only", function()
    local junk = dir .. "/junk.db"
    files.write_file(junk, ("junk"):rep(1000))
    local db = sqlite.open(junk)
    local e = fails(db.exec, db, "SELECT count(*) FROM sqlite_master")
    assert.equal("NOTADB", e.name)
    db:close()
    local path = dir .. "/real.db"
    local a <close> = sqlite.open(path)
    a:exec("PRAGMA journal_mode = WAL; CREATE TABLE t (x)")
    local b <close> = sqlite.open(path, { busy_ms = 50 })
    a:exec("BEGIN EXCLUSIVE")
    e = fails(b.exec, b, "INSERT INTO t VALUES (1)")
    assert.equal("BUSY", e.name)
    a:exec("ROLLBACK")
    b:exec("INSERT INTO t VALUES (1)")
    local ro <close> = sqlite.open(path, { readonly = true })
    e = fails(ro.exec, ro, "INSERT INTO t VALUES (2)")
    assert.equal("READONLY", e.name)
    e = fails(sqlite.open, dir .. "/no/such/folder/x.db")
    assert.equal("CANTOPEN", e.name)
    assert.matches("no/such/folder", e.message)
    e = fails(sqlite.open, dir .. "/missing.db", { create = false })
    assert.equal("CANTOPEN", e.name)
    assert.is_nil(io.open(dir .. "/missing.db", "rb"))
    assert.matches("busy_ms", tostring(fails(sqlite.open, path, { busy_ms = -1 })))
  end)

  it("keeps a connection for its statements, and refuses use after close", function()
    local db = sqlite.open(":memory:")
    local st = db:prepare("SELECT 1")
    db = nil       -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.equal(1, st:first())
    local conn = sqlite.open(":memory:")
    local s2 = conn:prepare("SELECT 2")
    conn:close()
    conn:close()
    assert.matches("database is closed", tostring(fails(s2.first, s2)))
    assert.matches("database is closed", tostring(fails(conn.exec, conn, "SELECT 1")))
    st:close()
    st:close()
    assert.matches("statement is closed", tostring(fails(st.first, st)))
    assert.matches("Statement%(closed%)", tostring(st))
    assert.matches("Database%(closed%)", tostring(conn))
    s2 = nil       -- luacheck: ignore
    collectgarbage()
  end)

  it("keeps two connections apart", function()
    local a <close> = sqlite.open(":memory:")
    local b <close> = sqlite.open(":memory:")
    a:exec("CREATE TABLE t (x); INSERT INTO t VALUES (1)")
    assert.equal("ERROR", fails(b.exec, b, "SELECT x FROM t").name)
    assert.matches("^%d+%.%d+%.%d+", sqlite.version)
  end)

  -- ---- the writer -----------------------------------------------------------------------

  local SQL = {
    lookup = "SELECT modified FROM o WHERE guid = ?",
    upsert = "INSERT INTO o (guid, name, code, total, modified, json) VALUES (?, ?, ?, ?, ?, ?) "
      .. "ON CONFLICT (guid) DO UPDATE SET name = excluded.name, code = excluded.code, "
      .. "total = excluded.total, "
      .. "modified = excluded.modified, json = excluded.json",
    delete_lines = "DELETE FROM l WHERE order_guid = ?",
    insert_line = "INSERT INTO l (order_guid, guid, n, qty) VALUES (?, ?, ?, ?)",
  }
  local SHAPE = { order = { "Guid", "Name|", "Supplier.Code", "Total", "=modified", "=json" },
                  lines = "Lines", line = { "=guid", "Guid", "N#", "Qty" }, arrays = { Lines = true } }

  local function writer_db(path)
    local db = sqlite.open(path or ":memory:", { busy_ms = 100 })
    db:exec("CREATE TABLE IF NOT EXISTS o (guid TEXT PRIMARY KEY, name TEXT NOT NULL, code, total, "
      .. "modified INTEGER NOT NULL, json TEXT NOT NULL); "
      .. "CREATE TABLE IF NOT EXISTS l (order_guid, guid, n, qty, UNIQUE (order_guid, guid))")
    return db
  end
  local function all(db, sql)
    local st <close> = db:prepare(sql)
    local out = {}
    for r in st:rows() do out[#out + 1] = r end
    return out
  end
  local function order(g, ms, lines, extra)
    local po = { Guid = g, Name = "order " .. g, Supplier = { Code = "S-" .. g }, Total = 12.5,
                 Lines = lines or {} }
    for k, v in pairs(extra or {}) do po[k] = v end
    return po, ms
  end
  -- w:add(order(...)) with its stamp: add(w, deleted, order(g, ms, ...))
  local function add(w, deleted, po, ms) w:add(po, ms, deleted) end

  it("writes pages of orders and their lines by the shape, each page in one transaction", function()
    local db <close> = writer_db()
    local w <close> = db:writer(SQL, SHAPE)
    add(w, false, order("a", 10, { { Guid = "a1", N = 1.0, Qty = 2.5 }, { Guid = "a2", N = 2, Qty = 1 } }))
    add(w, true, order("b", 20, { { Guid = "b1", N = 1 }, "not a line", { N = 3 } },
                       { Name = {}, Total = false }))
    w:commit(false)
    add(w, false, order("c", 30, nil, { Supplier = "not a table" }))
    w:commit(false)
    assert.same({ 3, 1 }, { w:wait() })
    assert.same({ { "a", "order a", "S-a", 12.5, 10 }, { "b", "", "S-b", 0, 20 },
                  { "c", "order c", nil, 12.5, 30 } },
      all(db, "SELECT guid, name, code, total, modified FROM o ORDER BY guid"))
    local lines = all(db, "SELECT order_guid, guid, n, qty FROM l ORDER BY order_guid, guid")
    assert.same({ { "a", "a1", 1, 2.5 }, { "a", "a2", 2, 1 }, { "b", "b1", 1 } }, lines)
    assert.equal("integer", math.type(lines[1][3]))   -- N# made 1.0 the integer 1
    local json = all(db, "SELECT json FROM o WHERE guid = 'c'")[1][1]
    assert.same({ Guid = "c", Name = "order c", Supplier = "not a table", Total = 12.5, Lines = {} },
                cjson.decode(json))
    assert.truthy(json:find('"Lines":[]', 1, true))
    w:close()
    -- the connection is the script's again
    assert.equal(3, all(db, "SELECT count(*) FROM o")[1][1])
  end)

  it("keeps an order held at the same time or later unless forced, and replaces the lines of one it rewrites",
     function()
    local db <close> = writer_db()
    local w <close> = db:writer(SQL, SHAPE)
    add(w, false, order("a", 10, { { Guid = "a1", N = 1 }, { Guid = "a2", N = 2 } }))
    add(w, false, order("b", 10, { { Guid = "b1", N = 1 } }))
    w:commit(false)
    add(w, false, order("a", 10, { { Guid = "x", N = 9 } }, { Name = "same time" }))   -- kept as held
    add(w, false, order("b", 11, { { Guid = "b2", N = 1 } }, { Name = "newer" }))    -- rewritten
    -- the same order twice in one page: the second replaces the first's lines
    add(w, false, order("c", 5, { { Guid = "c1", N = 1 } }))
    add(w, false, order("c", 6, { { Guid = "c1", N = 1 }, { Guid = "c2", N = 2 } }))
    w:commit(false)
    assert.same({ 5, 0 }, { w:wait() })
    assert.same({ { "a", "order a" }, { "b", "newer" }, { "c", "order c" } },
      all(db, "SELECT guid, name FROM o ORDER BY guid"))
    assert.same({ { "a", "a1" }, { "a", "a2" }, { "b", "b2" }, { "c", "c1" }, { "c", "c2" } },
      all(db, "SELECT order_guid, guid FROM l ORDER BY order_guid, guid"))
    add(w, false, order("a", 10, { { Guid = "x", N = 9 } }, { Name = "forced" }))
    w:commit(true)
    assert.same({ 6, 0 }, { w:wait() })
    assert.same({ { "a", "x" } }, all(db, "SELECT order_guid, guid FROM l WHERE order_guid = 'a'"))
  end)

  it("rolls back a page that fails, says why on the next call, and writes no later page", function()
    local db <close> = writer_db()
    db:exec("CREATE TRIGGER boom BEFORE INSERT ON o WHEN NEW.guid = 'bad' "
      .. "BEGIN SELECT RAISE(ABORT, 'no bad orders'); END")
    local w <close> = db:writer(SQL, SHAPE)
    add(w, false, order("a", 1, { { Guid = "a1" } }))
    w:commit(false)
    add(w, false, order("b", 1, { { Guid = "b1" } }))
    add(w, false, order("bad", 1))
    w:commit(false)
    add(w, false, order("d", 1))
    pcall(w.commit, w, false)   -- queued behind the failing page, or refused once it has failed
    local e = fails(w.wait, w)
    assert.equal("CONSTRAINT", e.name)
    assert.matches("no bad orders", e.message)
    add(w, false, order("c", 1))
    e = fails(w.commit, w, false)   -- the failure stays: nothing more is written
    assert.equal("CONSTRAINT", e.name)
    w:close()
    assert.same({ { "a" } }, all(db, "SELECT guid FROM o ORDER BY guid"))
    assert.same({ { "a1" } }, all(db, "SELECT guid FROM l ORDER BY guid"))
  end)

  it("says the database is locked when another connection holds it, and writes nothing", function()
    local path = dir .. "/locked.sqlite"
    local db <close> = writer_db(path)
    local other <close> = sqlite.open(path)
    other:exec("BEGIN IMMEDIATE")
    local w <close> = db:writer(SQL, SHAPE)
    add(w, false, order("a", 1))
    w:commit(false)
    assert.equal("BUSY", fails(w.wait, w).name)
    other:exec("ROLLBACK")
    w:close()
    assert.equal(0, all(db, "SELECT count(*) FROM o")[1][1])
  end)

  it("refuses a shape that does not fit its statements, bad values and use after close", function()
    local db <close> = writer_db()
    assert.matches("the upsert takes 6 values and shape.order gives 5",
      tostring(fails(db.writer, db, SQL, { order = { "Guid", "Name", "Total", "=modified", "=json" },
                                           lines = "Lines",
                                           line = SHAPE.line })))
    assert.matches("shape.line%[1%] is =nope", tostring(fails(db.writer, db, SQL,
      { order = SHAPE.order, lines = "Lines", line = { "=nope", "Guid", "N", "Qty" } })))
    assert.equal("MISUSE", fails(db.writer, db, { lookup = "", upsert = SQL.upsert,
                                                  delete_lines = SQL.delete_lines,
                                                  insert_line = SQL.insert_line }, SHAPE).name)
    local w = db:writer(SQL, SHAPE)
    assert.matches("has a writer already", tostring(fails(db.writer, db, SQL, SHAPE)))
    assert.matches("has no Guid", tostring(fails(w.add, w, { Name = "x" }, 1, false)))
    assert.matches("cannot write a function",
      tostring(fails(w.add, w, { Guid = "f", Name = "x", Supplier = print, Lines = { print } }, 1, false)))
    w:close()
    w:close()
    assert.matches("the writer is closed", tostring(fails(add, w, false, order("a", 1))))
    local again <close> = db:writer(SQL, SHAPE)   -- a closed writer leaves room for another
    assert.equal("unleashed.sqlite.Writer", tostring(again))
  end)

  it("finishes the page in hand when the database closes, or when the writer is collected", function()
    local path = dir .. "/gc.sqlite"
    local db = writer_db(path)
    local w = db:writer(SQL, SHAPE)
    for i = 1, 200 do add(w, false, order("g" .. i, i, { { Guid = "l" .. i, N = 1 } })) end
    w:commit(false)
    db:close()   -- joins the writer first
    assert.matches("closed", tostring(fails(w.wait, w)))
    local check <close> = sqlite.open(path)
    assert.equal(200, all(check, "SELECT count(*) FROM o")[1][1])
    for round = 1, 3 do
      local d = writer_db(path)
      local ww = d:writer(SQL, SHAPE)
      add(ww, false, order("r" .. round, 1))
      ww:commit(false)
      ww, d = nil, nil   -- luacheck: ignore
      collectgarbage()
      collectgarbage()
    end
    assert.equal(203, all(check, "SELECT count(*) FROM o")[1][1])
  end)
end)
