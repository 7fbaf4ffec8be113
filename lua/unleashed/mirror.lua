-- unleashed.mirror: purchase orders and their lines (and costs, when asked)
-- kept in a SQLite file for reports, in step with the account through the
-- change feed (unleashed.changes).
--
--   local mirror = require "unleashed.mirror"
--   local m <close> = mirror.open("orders.sqlite")
--   local result = m:sync(client, { costs = false, progress = function(done, total) end })
--   m:close()
--
-- Each page of the feed is written in one transaction: orders upserted by
-- Guid (only those whose LastModifiedOn is new), their lines replaced. The
-- checkpoint lives in the database and moves in its own transaction after
-- the page that completes the round is committed, and only when the round
-- wrote something: a run with nothing changed writes nothing. A kill at any
-- point leaves whole pages and a checkpoint no later than what they hold.
-- The schema is in docs/reference.md ("The mirror's schema").
local sqlite = require "unleashed.sqlite"
local changes = require "unleashed.changes"
local core = require "unleashed.core"

local M = {}

M.SCHEMA_VERSION = "1"
-- The SQLite header's application_id of a mirror ("UNLM"): what tells a
-- mirror from another application's database before anything is written.
M.APPLICATION_ID = 0x554E4C4D
-- Set on every open for writing (why: Mirror's _setup).
M.PRAGMAS = "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
  .. "PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 4096"
M.BUSY_MS = 2000        -- how long to wait for another writer before saying "locked"

-- Collections of the API that are arrays even when empty (an empty Lua
-- table is otherwise written as an object).
M.ARRAYS = {}
for _, name in ipairs{ "PurchaseOrderLines", "PendingBatchNumbers", "PendingSerialNumbers", "BatchNumbers",
                       "SerialNumbers", "SalesOrders" } do
  M.ARRAYS[name] = true
end

M.SCHEMA = [[
CREATE TABLE IF NOT EXISTS mirror_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
  guid TEXT PRIMARY KEY,
  order_number TEXT NOT NULL,
  status TEXT NOT NULL,
  custom_status TEXT,
  supplier_code TEXT,
  supplier_name TEXT,
  warehouse_code TEXT,
  warehouse_name TEXT,
  currency TEXT,
  exchange_rate REAL,
  order_date TEXT,
  delivery_date TEXT,
  received_date TEXT,
  completed_date TEXT,
  supplier_ref TEXT,
  sub_total REAL,
  tax_total REAL,
  total REAL,
  bc_sub_total REAL,
  bc_tax_total REAL,
  bc_total REAL,
  created_on TEXT,
  last_modified_on TEXT,
  last_modified_ms INTEGER NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_modified ON orders (last_modified_ms);
CREATE TABLE IF NOT EXISTS lines (
  order_guid TEXT NOT NULL,
  guid TEXT NOT NULL,
  line_number INTEGER,
  product_code TEXT,
  product_description TEXT,
  unit TEXT,
  order_quantity REAL,
  receipt_quantity REAL,
  unit_price REAL,
  discount_rate REAL,
  line_total REAL,
  line_tax REAL,
  tax_code TEXT,
  delivery_date TEXT,
  comments TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS lines_by_order ON lines (order_guid, guid);
CREATE TABLE IF NOT EXISTS costs (
  order_guid TEXT NOT NULL,
  position INTEGER NOT NULL,
  reference TEXT,
  supplier_code TEXT,
  currency TEXT,
  cost REAL,
  tax_cost REAL,
  total_cost REAL,
  bc_total_cost REAL,
  cost_date TEXT,
  distribution_method TEXT,
  receipted INTEGER,
  json TEXT NOT NULL,
  PRIMARY KEY (order_guid, position)
) WITHOUT ROWID;
]]

-- ---- errors --------------------------------------------------------------------------

local MirrorError = { __name = "unleashed.MirrorError" }
MirrorError.__index = MirrorError
function MirrorError:__tostring()
  return "unleashed: mirror " .. self.path .. ": " .. self.message
end
M.Error = MirrorError

local LOCKED = "the database is locked by another process; nothing was written (try again when it is done)"
local REASONS = {
  BUSY = { "locked", LOCKED },
  LOCKED = { "locked", LOCKED },
  READONLY = { "read-only", "the database is read-only (check the file's and its folder's permissions); "
               .. "nothing was written" },
  PERM = { "read-only", "the database cannot be written (permission denied); nothing was written" },
  CANTOPEN = { "cannot-open", "the database cannot be opened or written (check the path, the file's and its "
               .. "folder's permissions); nothing was written" },
  NOTADB = { "corrupt", "the file is not a SQLite database, or its header is damaged; nothing was written" },
  CORRUPT = { "corrupt", "the database is corrupt (SQLite found damaged pages); nothing more was written: "
              .. "restore it, or remove it and sync with --full" },
  FULL = { "full", "the disk is full; the page in progress was not written" },
  IOERR = { "io", "a read or write of the database failed; the page in progress was not written" },
}

--- mirror.error_of(path, err, doing): a MirrorError for an error of
-- unleashed.sqlite (what it says depends on SQLite's code), err itself for
-- anything else.
function M.error_of(path, err, doing)
  if type(err) == "table" and getmetatable(err) ~= MirrorError and type(err.name) == "string"
      and math.type(err.code) == "integer" then
    local reason = REASONS[err.name] or { "sqlite", "SQLite failed" }
    return setmetatable({ kind = "database", reason = reason[1], path = path, code = err.code,
      message = ("%s (%s: %s, SQLITE_%s)"):format(reason[2], doing, err.message, err.name) }, MirrorError)
  end
  return err
end

local function raise(path, err, doing)
  error(M.error_of(path, err, doing), 0)
end

local function fail(path, reason, message)
  error(setmetatable({ kind = "database", reason = reason, path = path, message = message }, MirrorError), 0)
end

-- ---- opening -------------------------------------------------------------------------

local Mirror = {}
Mirror.__index = Mirror
Mirror.__name = "unleashed.Mirror"

local function try(self, doing, fn, ...)
  local ok, a, b, c = pcall(fn, ...)
  if not ok then raise(self.path, a, doing) end
  return a, b, c
end

-- The folder a path names its file in ("." for a bare name).
local function folder_of(path)
  local d = path:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  return d == "" and "/" or d
end

-- Fails naming the folder when it does not exist (what SQLite would only
-- call "unable to open database file").
local function check_folder(path)
  local folder = folder_of(path)
  local f = io.open(folder, "rb")
  if not f then
    fail(path, "cannot-open",
      ("the folder %s does not exist (make it first); nothing was written"):format(folder))
  end
  f:close()
end

-- What a file is, read before anything is set or written: "mirror" (its
-- application_id is the mirror's, or it is 0 and the file holds the
-- mirror_meta table, as a mirror made before the id was set does), "empty"
-- (no table, view or index at all: a new database), or "other" with a
-- description. A file that is not SQLite fails here (SQLITE_NOTADB).
local function identify(self)
  local db = self.db
  local function one(sql)
    local st = try(self, "reading it", db.prepare, db, sql)
    local v = try(self, "reading it", st.first, st)
    st:close()
    return v
  end
  local app = one("PRAGMA application_id")
  local objects = one("SELECT count(*) FROM sqlite_master")
  local has_meta = one("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'mirror_meta'")
  if app == M.APPLICATION_ID or (app == 0 and has_meta == 1) then return "mirror" end
  if app == 0 and objects == 0 then return "empty" end
  return "other", ("application_id 0x%08X, %d schema object%s, no mirror_meta table"):format(
    app & 0xFFFFFFFF, objects, objects == 1 and "" or "s")
end

--- mirror.open(path, opts) -> Mirror. opts.readonly (for reports): no
-- schema is made, nothing is written. The schema is made when missing; a
-- file of another schema version is refused, and so is a database that is
-- not a mirror (another application's SQLite file, or a file that is not
-- SQLite), before any pragma is set or anything written. A file that this
-- open makes (or finds empty) is taken back if the first sync fails
-- (m.fresh until a sync succeeds).
function M.open(path, opts)
  opts = opts or {}
  if type(path) ~= "string" or path == "" then
    fail(tostring(path), "usage", "the database path must be a non-empty string")
  end
  local self = setmetatable({ path = path, readonly = opts.readonly and true or false }, Mirror)
  local f = io.open(path, "rb")
  local existed = f ~= nil
  if f then
    self.was_empty = f:seek("end") == 0
    f:close()
  else
    check_folder(path)
  end
  if not self.readonly then
    -- Root writes anywhere: the permission is asked of the file itself, so
    -- the message says "read-only" rather than failing half-way.
    if existed then
      local w = io.open(path, "r+b")
      if not w then
        fail(path, "read-only", "the database file is read-only (no write permission); nothing was written")
      end
      w:close()
    end
  elseif not existed then
    fail(path, "cannot-open", "no such database file (make it with `unleashed po sync --db FILE`)")
  end
  self.db = try(self, "opening it", sqlite.open, path, { readonly = self.readonly, busy_ms = M.BUSY_MS })
  self.fresh = not existed or nil
  local ok, err = pcall(M._setup, self)
  if not ok then
    self:_discard()
    error(err, 0)
  end
  return self
end

function M._setup(self)
  local db, path = self.db, self.path
  local what, about = identify(self)
  if what == "other" then
    fail(path, "not-a-mirror", ("the file is a SQLite database of another application (%s), not a mirror "
      .. "made by `unleashed po sync`; nothing was written (give --db a new file)"):format(about))
  end
  if what == "empty" and self.was_empty then self.fresh = true end
  if self.readonly then
    if what == "empty" then
      fail(path, "not-a-mirror", "the file is an empty database, not a mirror made by `unleashed po sync`")
    end
    return
  end
  -- WAL: reports read while the sync writes, and a kill leaves whole pages.
  -- 16 KiB pages hold a whole order's JSON (some 4 KiB) without overflow
  -- pages (it applies to a new file only). Lines are appended to their
  -- table and found through a small index, the Guids' random order costing
  -- only the index; 32 MiB of page cache hold the indexes of a large
  -- account; the WAL is copied back every 64 MiB rather than every 16.
  try(self, "opening it", db.exec, db, M.PRAGMAS)
  try(self, "making its tables", db.exec, db, "BEGIN IMMEDIATE;" .. M.SCHEMA)
  local st = try(self, "reading its version", db.prepare, db, "SELECT value FROM mirror_meta WHERE key = ?")
  local version = try(self, "reading its version", st.first, st, "schema_version")
  st:close()
  if version == nil then
    try(self, "making its tables", db.exec, db,
      ("INSERT INTO mirror_meta (key, value) VALUES ('schema_version', '%s'); PRAGMA application_id = %d; "
       .. "PRAGMA user_version = %d"):format(M.SCHEMA_VERSION, M.APPLICATION_ID, tonumber(M.SCHEMA_VERSION)))
  end
  try(self, "making its tables", db.exec, db, "COMMIT")
  if version ~= nil and version ~= M.SCHEMA_VERSION then
    fail(path, "schema", ("the database holds mirror schema %s; this version reads schema %s")
      :format(version, M.SCHEMA_VERSION))
  end
  self:_prepare()
end

-- Closes the mirror and takes back the file this open made (or found
-- empty), with its WAL and shared memory: a first sync that fails leaves no
-- empty or half-built database behind.
function Mirror:_discard()
  self:close()
  if not self.fresh then return end
  self.fresh = nil
  for _, suffix in ipairs{ "-wal", "-shm", "-journal" } do os.remove(self.path .. suffix) end
  if self.was_empty then
    local f = io.open(self.path, "wb")
    if f then f:close() end
  else
    os.remove(self.path)
  end
end

-- The statements a sync writes through (the writer takes the same text).
M.SQL = {
  lookup = "SELECT last_modified_ms FROM orders WHERE guid = ?",
  upsert = [[INSERT INTO orders (guid, order_number, status, custom_status, supplier_code,
      supplier_name, warehouse_code, warehouse_name, currency, exchange_rate, order_date, delivery_date,
      received_date, completed_date, supplier_ref, sub_total, tax_total, total, bc_sub_total, bc_tax_total,
      bc_total, created_on, last_modified_on, last_modified_ms, json)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (guid) DO UPDATE SET order_number = excluded.order_number, status = excluded.status,
      custom_status = excluded.custom_status, supplier_code = excluded.supplier_code,
      supplier_name = excluded.supplier_name, warehouse_code = excluded.warehouse_code,
      warehouse_name = excluded.warehouse_name, currency = excluded.currency,
      exchange_rate = excluded.exchange_rate, order_date = excluded.order_date,
      delivery_date = excluded.delivery_date, received_date = excluded.received_date,
      completed_date = excluded.completed_date, supplier_ref = excluded.supplier_ref,
      sub_total = excluded.sub_total, tax_total = excluded.tax_total, total = excluded.total,
      bc_sub_total = excluded.bc_sub_total, bc_tax_total = excluded.bc_tax_total,
      bc_total = excluded.bc_total, created_on = excluded.created_on,
      last_modified_on = excluded.last_modified_on, last_modified_ms = excluded.last_modified_ms,
      json = excluded.json]],
  delete_lines = "DELETE FROM lines WHERE order_guid = ?",
  insert_line = [[INSERT INTO lines (order_guid, guid, line_number, product_code, product_description,
      unit, order_quantity, receipt_quantity, unit_price, discount_rate, line_total, line_tax, tax_code,
      delivery_date, comments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
  listed = "INSERT OR IGNORE INTO temp.listed (guid) VALUES (?)",
}

function Mirror:_prepare()
  local db = self.db
  local function prep(sql) return try(self, "preparing a statement", db.prepare, db, sql) end
  self.st = {
    meta_get = prep("SELECT value FROM mirror_meta WHERE key = ?"),
    meta_set = prep("INSERT INTO mirror_meta (key, value) VALUES (?, ?) "
                    .. "ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    modified = prep(M.SQL.lookup),
    upsert = prep(M.SQL.upsert),
    delete_lines = prep(M.SQL.delete_lines),
    insert_line = prep(M.SQL.insert_line),
    delete_costs = prep("DELETE FROM costs WHERE order_guid = ?"),
    insert_cost = prep([[INSERT INTO costs (order_guid, position, reference, supplier_code, currency, cost,
        tax_cost, total_cost, bc_total_cost, cost_date, distribution_method, receipted, json)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]]),
  }
end

--- m:close(): idempotent; also __close and __gc.
function Mirror:close()
  for _, st in pairs(self.st or {}) do st:close() end
  self.st = nil
  if self.db then self.db:close() end
  self.db = nil
end
Mirror.__close = Mirror.close
Mirror.__gc = Mirror.close

function Mirror:meta(key)
  return try(self, "reading it", self.st.meta_get.first, self.st.meta_get, key)
end

--- m:checkpoint() -> the change feed's checkpoint, or nil before the first complete sync.
function Mirror:checkpoint()
  return self:meta("checkpoint")
end

-- ---- rows -------------------------------------------------------------------------------

local function field(t, a, b)
  local v = t[a]
  if b then v = type(v) == "table" and v[b] or nil end
  if type(v) == "table" or type(v) == "userdata" then return nil end
  return v
end

-- The order's JSON as the library hands it out (dates ISO 8601 UTC, null
-- fields left out, every number exactly as decoded); collections stay
-- arrays when empty. Written by the core (src/encode.c).
local encode_json = core.encode_json
function M.order_json(po)
  return encode_json(po, M.ARRAYS)
end

-- Where the upsert's and the line insert's values come from, in their
-- columns' order (sqlite/writer.c reads the same lists): a member, a member
-- of a member, the order's Guid, its LastModifiedOn in ms, its JSON. A
-- missing member, or a table, is NULL; "|" makes NULL an empty text, "#"
-- makes an integral number an integer.
M.SHAPE = {
  order = { "Guid", "OrderNumber|", "OrderStatus|", "CustomOrderStatus", "Supplier.SupplierCode",
            "Supplier.SupplierName", "Warehouse.WarehouseCode", "Warehouse.WarehouseName",
            "Currency.CurrencyCode", "ExchangeRate", "OrderDate", "DeliveryDate", "ReceivedDate",
            "CompletedDate", "SupplierRef", "SubTotal", "TaxTotal", "Total", "BCSubTotal", "BCTaxTotal",
            "BCTotal", "CreatedOn", "LastModifiedOn", "=modified", "=json" },
  lines = "PurchaseOrderLines",
  line = { "=guid", "Guid", "LineNumber#", "Product.ProductCode", "Product.ProductDescription",
           "UnitOfMeasure.Name", "OrderQuantity", "ReceiptQuantity", "UnitPrice", "DiscountRate", "LineTotal",
           "LineTax", "LineTaxCode", "DeliveryDate", "Comments" },
  arrays = M.ARRAYS,
}

-- The same lists read in Lua, for the pages written here (with costs).
local SQL_TYPES = { string = true, number = true, boolean = true }
local function compile(list)
  local out = {}
  for i, src in ipairs(list) do
    local name, flags = src:match("^([^|#]+)([|#]*)$")
    local a, b = name:match("^([^.]+)%.(.+)$")
    out[i] = { special = name:match("^=(%a+)$"), a = a or name, b = b, empty = flags:find("|", 1, true),
               integer = flags:find("#", 1, true) }
  end
  return out
end
local ORDER_VALUES, LINE_VALUES = compile(M.SHAPE.order), compile(M.SHAPE.line)

local function row_values(cols, t, guid, lmo, json)
  local out = {}
  for i, c in ipairs(cols) do
    local v
    if c.special == "guid" then v = guid
    elseif c.special == "modified" then v = lmo
    elseif c.special == "json" then v = json
    else
      v = rawget(t, c.a)
      if c.b then v = type(v) == "table" and rawget(v, c.b) or nil end
      if not SQL_TYPES[type(v)] then v = nil end
      if c.integer and math.type(v) == "float" then v = math.tointeger(v) or v end
      if v == nil and c.empty then v = "" end
    end
    out[i] = v
  end
  return table.unpack(out, 1, #cols)
end

-- Calls fn(line) for each of the order's lines that has a Guid.
local function each_line(po, fn)
  local lines = rawget(po, M.SHAPE.lines)
  if type(lines) ~= "table" then return end
  for _, l in ipairs(lines) do
    if type(l) == "table" and type(rawget(l, "Guid")) == "string" then fn(l) end
  end
end

-- held: the order is in the mirror already (its old lines go).
function Mirror:_write_order(po, lmo, held)
  local st = self.st
  local g = po.Guid
  st.upsert:run(row_values(ORDER_VALUES, po, g, lmo, M.order_json(po)))
  if held then st.delete_lines:run(g) end
  local insert = st.insert_line
  each_line(po, function(l) insert:run(row_values(LINE_VALUES, l, g)) end)
end

function Mirror:_write_costs(g, list, held)
  local st = self.st
  if held then st.delete_costs:run(g) end
  for i, c in ipairs(list or {}) do
    st.insert_cost:run(g, i, field(c, "Reference"), field(c, "Supplier", "SupplierCode"),
      field(c, "Currency"), field(c, "Cost"), field(c, "TaxCost"), field(c, "TotalCost"),
      field(c, "BCTotalCost"), field(c, "CostDate"), field(c, "DistributionMethod"),
      type(c.Receipted) == "boolean" and (c.Receipted and 1 or 0) or nil, encode_json(c))
  end
end

-- Writes the orders of one page that the mirror does not hold at this
-- LastModifiedOn, in one transaction. Returns how many were written.
function Mirror:_write_page(orders, force, costs_of, listed)
  local todo, in_page = {}, {}
  local modified = self.st.modified
  for _, po in ipairs(orders) do
    local lmo = changes.modified_ms(po)
    if listed then listed:run(po.Guid) end
    local have = try(self, "reading it", modified.first, modified, po.Guid)
    if force or have == nil or have < lmo then
      -- held: in the mirror, or written earlier in this page (its lines go first)
      todo[#todo + 1] = { po, lmo, have ~= nil or in_page[po.Guid] ~= nil }
      in_page[po.Guid] = true
    end
  end
  if #todo == 0 then return 0 end
  -- Costs are read before the transaction: no lock is held across a call.
  local costs = {}
  if costs_of then
    for i, t in ipairs(todo) do
      if t[1].OrderStatus ~= "Deleted" then costs[i] = costs_of(t[1]) end
    end
  end
  local db = self.db
  try(self, "writing a page", db.exec, db, "BEGIN IMMEDIATE")
  local ok, err = pcall(function()
    for i, t in ipairs(todo) do
      self:_write_order(t[1], t[2], t[3])
      if costs_of then self:_write_costs(t[1].Guid, costs[i], t[3]) end
    end
  end)
  if ok then ok, err = pcall(db.exec, db, "COMMIT") end
  if not ok then
    pcall(db.exec, db, "ROLLBACK")
    raise(self.path, err, "writing a page")
  end
  return #todo
end

function Mirror:_set_meta(values)
  local db = self.db
  try(self, "saving the checkpoint", db.exec, db, "BEGIN IMMEDIATE")
  local ok, err = pcall(function()
    for k, v in pairs(values) do self.st.meta_set:run(k, v) end
  end)
  if ok then ok, err = pcall(db.exec, db, "COMMIT") end
  if not ok then
    pcall(db.exec, db, "ROLLBACK")
    raise(self.path, err, "saving the checkpoint")
  end
end

-- ---- syncing --------------------------------------------------------------------------

-- What identifies the account without its key: the client's printed form
-- ("abc12345..., https://host"), which holds the id's first characters only.
local function account_of(client)
  return tostring(client):match("^unleashed%.Client%((.*)%)$") or tostring(client)
end

--- m:sync(client, opts) -> result. opts: since (a date: read changes since
-- it instead of the checkpoint), full (list every order again, rewrite
-- them all, and drop orders the account no longer lists), costs (also keep
-- each written order's costs: one more call per order), progress(done,
-- total), page_size, concurrency, overlap. A mirror that keeps costs
-- (made or rebuilt with costs) keeps them up to date on every sync.
-- result: { orders = written, deleted = written Deleted ones, calls,
--           complete = the round read everything, checkpoint = the one kept }
function Mirror:sync(client, opts)
  if not self.fresh then return self:_sync(client, opts) end
  -- The first sync into a file this open made: on failure the file goes.
  local ok, result = pcall(self._sync, self, client, opts)
  if not ok then
    self:_discard()
    error(result, 0)
  end
  self.fresh = nil
  return result
end

function Mirror:_sync(client, opts)
  opts = opts or {}
  if self.readonly then fail(self.path, "usage", "the mirror was opened read-only") end
  local account = account_of(client)
  local held = self:meta("account")
  if held and held ~= account and not opts.full then
    fail(self.path, "account", ("the database mirrors another account (%s), not %s: use another --db, "
      .. "or --full to replace it"):format(held, account))
  end
  local kept_costs = self:meta("costs") == "1"
  local has_orders = try(self, "reading it", function()
    local st <close> = self.db:prepare("SELECT count(*) FROM orders")
    return (st:first())
  end)
  if opts.costs and not kept_costs and has_orders > 0 and not opts.full then
    fail(self.path, "usage", "the database was made without costs: run once with --full to add them")
  end
  local since = opts.since
  if since == nil and not opts.full then since = self:checkpoint() end
  local feed = client.purchase_orders:changes({ since = since }, { progress = opts.progress,
    page_size = opts.page_size, concurrency = opts.concurrency, overlap = opts.overlap })
  -- A mirror that keeps costs keeps them up to date, with or without --costs.
  local costs_of
  if opts.costs or kept_costs then
    costs_of = function(po) return po:costs() end
  end
  local listed, writer
  if opts.full then
    try(self, "listing", self.db.exec, self.db,
      "CREATE TEMP TABLE IF NOT EXISTS listed (guid TEXT PRIMARY KEY); DELETE FROM listed")
  end
  if costs_of then
    -- Costs are read (one call per order) only for the orders the mirror
    -- lacks, known before the page is written: pages are written here.
    if opts.full then listed = try(self, "listing", self.db.prepare, self.db, M.SQL.listed) end
  else
    -- Pages go to the writer's thread, which writes one while the listing
    -- reads the next.
    writer = try(self, "writing a page", self.db.writer, self.db, { lookup = M.SQL.lookup,
      upsert = M.SQL.upsert, delete_lines = M.SQL.delete_lines, insert_line = M.SQL.insert_line,
      listed = opts.full and M.SQL.listed or nil }, M.SHAPE)
  end
  local written, deleted = 0, 0
  local ok, err = pcall(function()
    for orders in feed:pages() do
      if writer then
        for _, po in ipairs(orders) do
          writer:add(po, changes.modified_ms(po), po.OrderStatus == "Deleted")
        end
        writer:commit(opts.full)
      else
        local n = self:_write_page(orders, opts.full, costs_of, listed)
        written = written + n
        if n > 0 then
          for _, po in ipairs(orders) do if po.OrderStatus == "Deleted" then deleted = deleted + 1 end end
        end
      end
    end
    if writer then written, deleted = writer:wait() end
  end)
  if listed then listed:close() end
  if writer then writer:close() end
  if not ok then
    feed:close()
    raise(self.path, err, "writing a page")
  end
  local result = { orders = written, deleted = deleted, calls = feed.calls, complete = feed.verified,
                   checkpoint = feed.checkpoint }
  local values = {}
  if feed.checkpoint ~= self:checkpoint() and (written > 0 or not self:checkpoint() or opts.full
                                               or opts.since) then
    values.checkpoint = feed.checkpoint
  end
  if held ~= account then values.account = account end
  if opts.costs and not kept_costs then values.costs = "1" end
  if opts.full and feed.verified then
    -- Orders the account no longer lists at all (none, for the API keeps
    -- Deleted ones): dropped with their lines and costs.
    local db = self.db
    try(self, "removing orders no longer listed", db.exec, db, [[BEGIN IMMEDIATE;
      DELETE FROM lines WHERE order_guid NOT IN (SELECT guid FROM temp.listed);
      DELETE FROM costs WHERE order_guid NOT IN (SELECT guid FROM temp.listed);
      DELETE FROM orders WHERE guid NOT IN (SELECT guid FROM temp.listed);
      COMMIT]])
  end
  if next(values) then self:_set_meta(values) end
  result.checkpoint = self:checkpoint()
  return result
end

return M
