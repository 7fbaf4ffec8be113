-- `unleashed po sync`, `unleashed po watch` and `unleashed po report`: a
-- SQLite mirror of the purchase orders (unleashed.mirror), a script run for
-- each changed order (the change feed, unleashed.changes), and SQL reports
-- over the mirror. main(ctx, verb, args) returns the exit code; ctx is the
-- command's (stdout, stderr, getenv, stderr_is_tty, terminal_width, help).
local core = require "unleashed.core"
local csv = require "unleashed.cli.csv"
local format_text = require "unleashed.cli.format"
local flags = require "unleashed.cli.flags"
local connect = require "unleashed.cli.connect"
local progress = require "unleashed.cli.progress"

local M = {}

M.HELP = {}
M.HELP["po sync"] = [[
usage: unleashed po sync --db FILE.sqlite [--since DATE] [--full] [--costs]
                         [--page-size N]

Mirrors the account's purchase orders and their lines into a SQLite file
(made when missing), reading only what changed since the last sync: Deleted
orders too, with status Deleted. Each page is written in one transaction;
the checkpoint is kept in the file and moves only after its page is
committed, so a sync that is stopped at any point loses nothing. A sync with
nothing changed writes nothing. Reports read the file with any SQLite tool
(see `unleashed po report`); the schema is in the reference.

  --db FILE        the SQLite file (required)
  --since DATE     read the orders changed since DATE (YYYY-MM-DD or
                   YYYY-MM-DDTHH:MM:SS, UTC) instead of since the last sync
  --full           read every order again, rewrite them all, and drop any
                   the account no longer lists
  --costs          also keep each order's costs (one more call per changed
                   order); from then on every sync keeps them
  --page-size N    orders per call, 1 to 1000 (default 1000)

A progress bar goes to stderr while pages arrive, only when stderr is a
terminal.
]]

M.HELP["po watch"] = [[
usage: unleashed po watch --every SECONDS --run SCRIPT.lua [--since DATE]
                          [--checkpoint FILE]

Every SECONDS, reads the purchase orders created or changed since the last
round and runs SCRIPT.lua once for each, with `client`, `unleashed`,
`order` (the order) and `kind` ("changed" or "deleted") in its environment.
Delivery is at least once: the checkpoint moves only after the script has
returned for every order of the round. A script that fails is reported on
stderr and its order comes again in the next round. Every round that comes
to its end saves its checkpoint. SIGINT or SIGTERM stops the watch cleanly:
the round in hand runs to its end and saves its checkpoint, then the watch
exits (code 0); a second signal ends it at once, the checkpoint where it
was. A checkpoint file that cannot be read, or holds no checkpoint, is
refused (exit code 2).

  --every SECONDS     the wait between rounds (0.1 to 86400)
  --run SCRIPT.lua    the script to run for each changed order (required)
  --since DATE        the first round reads changes since DATE (default: now)
  --checkpoint FILE   keep the checkpoint in FILE: a watch started again goes
                      on where it stopped
]]

M.HELP["po report"] = [[
usage: unleashed po report --db FILE.sqlite QUERY.sql [--format table|csv|json]
                           [--raw-csv]

Runs the SQL in QUERY.sql over a mirror made by `unleashed po sync` (opened
read-only) and prints its rows. examples/month_end_by_supplier.sql is one.

  --db FILE        the SQLite file (required)
  --format F       table (aligned columns, numbers right-aligned with at
                   least 2 decimals, the row count on stderr; the default),
                   csv (RFC 4180 with a header row) or json (an array of
                   objects, NULL left out)
  --raw-csv        CSV text fields exactly as the mirror holds them (below)

CSV is RFC 4180 (CRLF, a header row). A text field that starts with =, +, -,
@, a tab or a carriage return gets a leading ' so that a spreadsheet shows
it as text instead of running it as a formula (numbers stay numbers);
--raw-csv writes every field exactly as the mirror holds it.
]]

-- ---- shared helpers ------------------------------------------------------------

local usage_error = flags.usage_error

local function plural(n, word)
  return ("%d %s%s"):format(n, word, n == 1 and "" or "s")
end

-- Errors of the mirror (a locked, read-only or corrupt file) print as they
-- read and exit 1; the library's errors go to the command's usual handling.
local function mirror_failed(ctx, err)
  local mirror = require "unleashed.mirror"
  if getmetatable(err) == mirror.Error then
    ctx.stderr:write(tostring(err), "\n")
    return err.reason == "usage" and 2 or 1
  end
  error(err, 0)
end

-- ---- po sync -----------------------------------------------------------------------

local function sync(ctx, args)
  local topic = "po sync"
  local opts, pos = flags.parse(args, { db = "value", since = "value", full = "flag", costs = "flag",
    ["page-size"] = "value" }, topic)
  if opts.help then return ctx.help(topic) end
  if #pos > 0 then usage_error(("unexpected argument %q"):format(pos[1]), topic) end
  if not opts.db or opts.db == "" then usage_error("--db FILE is required", topic) end
  if opts.since then flags.date(opts.since, "since", topic, true) end
  if opts.since and opts.full then usage_error("--since and --full: give one or the other", topic) end
  local page_size = opts["page-size"] and flags.integer(opts["page-size"], "page-size", 1, 1000, topic)
  local client = connect.client(ctx, opts, topic)
  local mirror = require "unleashed.mirror"
  local bar = ctx.stderr_is_tty() and progress.new(ctx.stderr, { width = ctx.terminal_width }) or nil
  local result
  local ok, err = pcall(function()
    local m <close> = mirror.open(opts.db)
    result = m:sync(client, { since = opts.since, full = opts.full, costs = opts.costs, page_size = page_size,
                              progress = bar and bar.update or nil })
  end)
  if bar then bar.finish() end
  client:close()
  if not ok then return mirror_failed(ctx, err) end
  local since = result.checkpoint and result.checkpoint:match(" since=(%S+)")
  ctx.stdout:write(("%s: %s written (%d Deleted), %s; checkpoint %s\n"):format(opts.db,
    plural(result.orders, "order"), result.deleted, plural(result.calls, "call"),
    (since == nil or since == "-") and "from the start" or since))
  if not result.complete then
    ctx.stderr:write("unleashed: the account changed while it was read; every order read was written, "
      .. "and the next sync reads again from the same checkpoint\n")
  end
  return 0
end

-- ---- po report -------------------------------------------------------------------

local function report(ctx, args)
  local topic = "po report"
  local opts, pos = flags.parse(args, { db = "value", format = "value", help = "flag", ["raw-csv"] = "flag" },
    topic, false)
  if opts.help then return ctx.help(topic) end
  if not opts.db or opts.db == "" then usage_error("--db FILE is required", topic) end
  if #pos == 0 then usage_error("missing QUERY.sql", topic) end
  if #pos > 1 then usage_error(("unexpected argument %q"):format(pos[2]), topic) end
  -- as `po list` takes them: the format in any case, --raw-csv with csv only
  local format = flags.choice(opts.format or "table", { "table", "csv", "json" }, "format", topic)
  if opts["raw-csv"] and format ~= "csv" then usage_error("--raw-csv goes with --format csv", topic) end
  local f = io.open(pos[1], "rb")
  if not f then usage_error(("cannot open %s"):format(pos[1]), topic) end
  local sql = f:read("a")
  f:close()
  local mirror = require "unleashed.mirror"
  local names, rows = {}, {}
  local ok, err = pcall(function()
    local m <close> = mirror.open(opts.db, { readonly = true })
    local ok2, st = pcall(m.db.prepare, m.db, sql)
    if not ok2 then
      local why = type(st) == "table" and tostring(st.message) or tostring(st)
      error(setmetatable({ kind = "database", reason = "query", path = opts.db,
                           message = pos[1] .. ": " .. why }, mirror.Error), 0)
    end
    local statement <close> = st
    names = statement:columns()
    local rok, rerr = pcall(function()
      for row in statement:rows() do rows[#rows + 1] = row end
    end)
    if not rok then
      if type(rerr) == "table" and rerr.name == "READONLY" then
        error(setmetatable({ kind = "database", reason = "query", path = opts.db, message = pos[1]
          .. ": reports open the mirror read-only, and this statement writes" }, mirror.Error), 0)
      end
      error(mirror.error_of(opts.db, rerr, "reading it"), 0)
    end
  end)
  if not ok then return mirror_failed(ctx, err) end
  local out = ctx.stdout
  local ncol = #names
  if format == "csv" then
    local raw = opts["raw-csv"] or false
    out:write(csv.record(names, ncol, raw))
    for _, r in ipairs(rows) do out:write(csv.record(r, ncol, raw)) end
  elseif format == "json" then
    local cjson = require("cjson").new()
    out:write("[")
    for i, r in ipairs(rows) do
      local obj = {}
      for c, name in ipairs(names) do obj[name] = r[c] end
      out:write(i > 1 and ",\n" or "\n", cjson.encode(obj))
    end
    out:write(#rows > 0 and "\n]\n" or "]\n")
  else
    -- A column is numeric when its first value that is not NULL is a number.
    local columns = {}
    for c, name in ipairs(names) do
      local kind
      for _, row in ipairs(rows) do
        if row[c] ~= nil then kind = type(row[c]) == "number" and "number" or nil break end
      end
      columns[c] = { name, function(row) return row[c] end, kind }
    end
    format_text.write_table(out, columns, rows)
    ctx.stderr:write(plural(#rows, "row"), "\n")
  end
  return 0
end

-- ---- po watch --------------------------------------------------------------------

local function read_text(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- Through a temporary file and a rename: a reader never sees half a checkpoint.
local function write_atomically(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text, "\n")
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    return nil, werr or cerr
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, rerr
  end
  return true
end

-- The checkpoint kept in FILE: nil when there is no such file (the watch
-- starts afresh); a file that cannot be read, or does not hold a checkpoint
-- of the change feed (when `use`), is an error that names it.
local function read_checkpoint(client, path, use)
  local function refuse(why)
    error({ kind = "usage", cli = true, topic = "po watch", message = ("--checkpoint %s: %s; nothing was run "
      .. "(fix or remove the file, or give --since)"):format(path, why) }, 0)
  end
  local f, oerr, errno = io.open(path, "rb")
  if not f then
    if errno == 2 then return nil end         -- ENOENT
    refuse("cannot read it: " .. tostring(oerr))
  end
  local text, rerr = f:read("a")
  f:close()
  if not text then refuse("cannot read it: " .. tostring(rerr)) end
  if not use then return nil end
  text = text:match("^%s*(.-)%s*$")
  if text == "" then refuse("the file is empty, not a checkpoint") end
  local ok, ferr = pcall(client.purchase_orders.changes, client.purchase_orders, { since = text })
  if not ok then
    local d = type(ferr) == "table" and type(ferr.details) == "table" and ferr.details[1]
    refuse("it does not hold a checkpoint of the change feed (" .. (d and (d.field .. " " .. d.message)
      or tostring(ferr)) .. ")")
  end
  ferr:close()
  return text
end

-- The server's time now (its Date header), from one small call.
local function server_now(client)
  local _, res = client:request("GET", "/PurchaseOrders", { query = { pageSize = 1 } })
  local d = res.headers and res.headers.date
  local s = d and core.parse_retry_after(d, 0)
  if s and s > 0 then return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(s)) end
  return os.date("!%Y-%m-%dT%H:%M:%S")
end

local FATAL = { auth = true, validation = true, quota = true, usage = true }

local function watch(ctx, args)
  local topic = "po watch"
  local opts, pos = flags.parse(args, { every = "value", run = "value", since = "value",
    checkpoint = "value" }, topic)
  if opts.help then return ctx.help(topic) end
  if #pos > 0 then usage_error(("unexpected argument %q"):format(pos[1]), topic) end
  if not opts.every then usage_error("--every SECONDS is required", topic) end
  local every = flags.number(opts.every, "every", 0.1, 86400, topic, "a number of seconds from 0.1 to 86400")
  if not opts.run then usage_error("--run SCRIPT.lua is required", topic) end
  local script = opts.run
  local chunk_text = read_text(script)
  if not chunk_text then usage_error(("cannot open script %s"):format(script), topic) end
  local _, lerr = load(chunk_text, "@" .. script, "t", {})
  if lerr then
    ctx.stderr:write("unleashed: ", lerr, "\n")
    return 1
  end
  if opts.since then flags.date(opts.since, "since", topic, true) end
  local unleashed = require "unleashed"
  local client = connect.client(ctx, opts, topic)
  local checkpoint
  if opts.checkpoint then
    local cok, cerr = pcall(read_checkpoint, client, opts.checkpoint, not opts.since)
    if not cok then
      client:close()
      error(cerr, 0)
    end
    checkpoint = cerr
  end
  if opts.since then checkpoint = opts.since end

  -- A first SIGINT or SIGTERM lets the round in hand finish (its scripts
  -- run, its checkpoint saved) and ends the watch; a second one ends the
  -- process at once (the checkpoint file, written by rename, stays whole).
  local guard <close> = core.stop_signals()
  local stop, told
  local function stopping()
    stop = stop or guard:taken()
    if stop and not told then
      told = true
      ctx.stderr:write(("unleashed: %s: the watch stops after this round (%s again stops it at once)\n")
        :format(stop, stop))
    end
    return stop
  end
  local status = 0
  local ok, err = pcall(function()
    checkpoint = checkpoint or server_now(client)
    while not stopping() do
      local round_ok, rerr = pcall(function()
        local feed <close> = client.purchase_orders:changes{ since = checkpoint }
        local done, failed = 0, 0
        for po, kind in feed do
          local env = setmetatable({ client = client, unleashed = unleashed, order = po, kind = kind,
                                     arg = { [0] = script } }, { __index = _G })
          local chunk = load(chunk_text, "@" .. script, "t", env)
          local sok, serr = xpcall(chunk, function(e)
            if type(e) == "table" and e.kind then return tostring(e) end
            -- the script's frames only: cut where the watch called it
            return (debug.traceback(tostring(e), 2):gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
          end)
          if sok then
            done = done + 1
          else
            failed = failed + 1
            feed:redeliver(po)
            ctx.stderr:write(("unleashed: %s %s: %s failed (it runs again next round): %s\n"):format(
              tostring(po.OrderNumber), tostring(po.Guid), script, tostring(serr)))
          end
          stopping()
        end
        -- Every round that comes to its end saves its checkpoint.
        checkpoint = feed.checkpoint
        if opts.checkpoint then
          local wok, werr = write_atomically(opts.checkpoint, checkpoint)
          if not wok then
            error({ kind = "usage", cli = true, topic = topic, message =
              ("--checkpoint %s: cannot write: %s"):format(opts.checkpoint, tostring(werr)) }, 0)
          end
        end
        if done + failed > 0 then
          ctx.stderr:write(("unleashed: %s: %s\n"):format(os.date("!%Y-%m-%dT%H:%M:%SZ"),
            failed > 0 and ("%s ran, %s failed"):format(plural(done, "order"), plural(failed, "order"))
              or ("%s ran"):format(plural(done, "order"))))
        end
      end)
      if not round_ok then
        if type(rerr) == "table" and (rerr.cli or FATAL[rerr.kind]) then error(rerr, 0) end
        ctx.stderr:write("unleashed: this round failed, the next one tries again: ", tostring(
          type(rerr) == "table" and rerr.kind and tostring(rerr) or rerr), "\n")
      end
      if not stopping() then stop = guard:wait(every) end
    end
  end)
  client:close()
  guard:close()
  if not ok then error(err, 0) end
  ctx.stderr:write(("unleashed: watch stopped (%s)\n"):format(stop or "done"))
  return status
end

-- ---- dispatch ------------------------------------------------------------------------

local VERBS = { sync = sync, watch = watch, report = report }

--- main(ctx, verb, args) -> exit code, for `unleashed po sync|watch|report ARGS`.
function M.main(ctx, verb, args)
  return VERBS[verb](ctx, args)
end

return M
