-- unleashed.sqlite, the binding the mirror writes through: values in and
-- out by type, statements reset after every call, errors that carry
-- SQLite's code, and lifetimes (a statement outliving its connection, two
-- connections at once, close called twice).
local sqlite = require "unleashed.sqlite"
local files = require "support.files"

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
end)
