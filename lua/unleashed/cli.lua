-- The `unleashed` command: purchase orders from the shell, workflow scripts
-- with a ready client, and the local sandbox. main(arg) returns the exit code
-- so that bin/unleashed stays a one-liner and the specs can call it too.
local csv = require "unleashed.cli.csv"
local profile = require "unleashed.cli.profile"

local M = {}

-- ---- exit codes --------------------------------------------------------------
M.EXIT = { ok = 0, failure = 1, usage = 2, auth = 3, validation = 4, not_found = 5,
           network = 6, rate_limited = 7 }
-- Error kinds (unleashed.Error.kind) to exit codes; any other kind is 1.
M.KIND_EXIT = { usage = 2, auth = 3, validation = 4, not_found = 5, network = 6, timeout = 6,
                tls = 6, rate_limited = 7, quota = 7 }

local EXIT_HELP = [[
exit codes:
  0  ok
  1  any other failure (a script's own error, a server fault, a conflict)
  2  usage: unknown command or flag, a missing or malformed argument
  3  auth: no credentials, a refused profile file, or the API refused them (403)
  4  validation: the API or the library refused the input (400)
  5  not found: no such purchase order
  6  network, timeout or TLS failure
  7  rate limited, or the monthly API call quota is spent]]

local CREDENTIALS_HELP = [[
credentials (first that applies):
  --profile NAME (or UNLEASHED_PROFILE)  section [NAME] of the profile file
  UNLEASHED_API_ID, UNLEASHED_API_KEY    from the environment
  [default]                               section of the profile file
  UNLEASHED_BASE_URL and UNLEASHED_CLIENT_TYPE fill what a profile leaves out.
  The profile file is $XDG_CONFIG_HOME/unleashed/credentials (by default
  ~/.config/unleashed/credentials): one [section] per company with api_id,
  api_key, base_url, client_type. It is refused unless only its owner can
  read and write it (chmod 600).]]

local HELP = {}
HELP.main = [[
usage: unleashed [--profile NAME] COMMAND [ARGS...]

Purchase orders in an Unleashed account, from the shell.

commands:
  po list       list purchase orders as a table, CSV or JSON
  po get        show one purchase order and its lines
  po receipt    receipt a purchase order
  po complete   complete a purchase order
  po sync       mirror the purchase orders into a SQLite file
  po watch      run a script for each changed purchase order
  po report     print an SQL report over the mirror
  run           run a workflow script with a ready client
  sandbox       start the local sandbox of the API

options:
  --profile NAME   use section [NAME] of the profile file
  --help           this help; `unleashed COMMAND --help` for a command
  --version        print the version

]] .. CREDENTIALS_HELP .. "\n\n" .. EXIT_HELP .. "\n"

HELP.po = [[
usage: unleashed po SUBCOMMAND [ARGS...]

subcommands:
  list [--supplier CODE] [--status S] [--since DATE] [--warehouse CODE]
       [--format table|csv|json] [--page-size N]
  get GUID|ORDER-NUMBER [--format table|json]
  receipt GUID|ORDER-NUMBER
  complete GUID|ORDER-NUMBER
  sync --db FILE.sqlite [--since DATE] [--full] [--costs] [--page-size N]
  watch --every SECONDS --run SCRIPT.lua [--since DATE] [--checkpoint FILE]
  report --db FILE.sqlite QUERY.sql [--format table|csv|json]

`unleashed po SUBCOMMAND --help` for each.

]] .. EXIT_HELP .. "\n"

HELP["po list"] = [[
usage: unleashed po list [--supplier CODE] [--status S] [--since DATE]
                         [--warehouse CODE] [--format table|csv|json] [--page-size N]

Lists purchase orders (not Deleted ones unless --status Deleted), several
pages in flight, in page order.

  --supplier CODE    supplier codes starting with CODE (supplierCode)
  --status S         Parked, Placed, Costed, Receipted, Complete, Deleted (orderStatus)
  --since DATE       created or changed since DATE, YYYY-MM-DD or
                     YYYY-MM-DDTHH:MM:SS, UTC (modifiedSince)
  --warehouse CODE   warehouse code (warehouseCode)
  --format F         table (aligned columns, the default), csv (RFC 4180 with
                     a header row) or json (an array of the API's objects)
  --page-size N      orders per call, 1 to 1000 (default 1000: the fewest
                     calls of the monthly quota)
  --profile NAME     credentials from section [NAME] of the profile file

A progress bar goes to stderr while pages arrive, only when stderr is a
terminal.

]] .. EXIT_HELP .. "\n"

HELP["po get"] = [[
usage: unleashed po get GUID|ORDER-NUMBER [--format table|json]

Shows one purchase order with its lines; JSON prints the API's object.

  --format F       table (the default) or json
  --profile NAME   credentials from section [NAME] of the profile file

]] .. EXIT_HELP .. "\n"

HELP["po receipt"] = [[
usage: unleashed po receipt GUID|ORDER-NUMBER

Receipts the order: each line's receipt quantity (its order quantity when
none is set) goes into stock and the order becomes Receipted. Prints the
order's new status.

  --profile NAME   credentials from section [NAME] of the profile file

]] .. EXIT_HELP .. "\n"

HELP["po complete"] = [[
usage: unleashed po complete GUID|ORDER-NUMBER

Completes the order: status Complete, no more costs or quantity changes.
Prints the order's new status.

  --profile NAME   credentials from section [NAME] of the profile file

]] .. EXIT_HELP .. "\n"

HELP.run = [[
usage: unleashed run SCRIPT.lua [ARGS...]
       unleashed --profile NAME run SCRIPT.lua [ARGS...]

Runs a workflow script. Its environment holds `unleashed` (the library) and
`client` (a client made from the credentials on first use), and `arg` holds
its arguments (arg[0] is the script). ARGS go to the script untouched, flags
included. An error the script does not catch is printed like an uncaught Lua
error and sets the exit code from its kind (below); os.exit(N) exits with N.

]] .. CREDENTIALS_HELP .. "\n\n" .. EXIT_HELP .. "\n"

HELP.sandbox = [[
usage: unleashed sandbox [FLAGS...]

Starts the local sandbox of the API (the unleashed-sandbox command beside
this one, or on PATH) with the same flags, for example:

  unleashed sandbox --port 8080 --seed 100

Its first line on stdout is "listening on URL"; when it makes up
credentials, the second is "credentials UNLEASHED_API_ID=... UNLEASHED_API_KEY=...".
The exit code is the sandbox's.
]]

-- po sync, po watch, po report: their help comes with them (unleashed.cli.sync).
for topic, text in pairs(require("unleashed.cli.sync").HELP) do
  HELP[topic] = text .. "\n" .. EXIT_HELP .. "\n"
end

-- ---- small helpers -------------------------------------------------------------
local function usage_error(message, topic)
  error({ kind = "usage", message = message, topic = topic, cli = true }, 0)
end

local function not_found(message)
  error({ kind = "not_found", message = message, cli = true }, 0)
end

local function field(t, path)
  for part in path:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  if t ~= nil and type(t) == "userdata" then return nil end  -- an explicit null
  return t
end

local GUID_PATTERN = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- Parses flags for one command. spec maps a flag name to "value" or "flag".
-- Returns the options and the positional arguments.
local function parse_flags(args, spec, topic)
  local opts, pos = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do pos[#pos + 1] = args[j] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local kind = spec[name]
      if not kind then usage_error(("unknown flag --%s"):format(name), topic) end
      if kind == "flag" then
        if value then usage_error(("--%s takes no value"):format(name), topic) end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then usage_error(("--%s needs a value"):format(name), topic) end
        end
        opts[name] = value
      end
    elseif a:sub(1, 1) == "-" and #a > 1 then
      usage_error(("unknown flag %s"):format(a), topic)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

-- stderr is a terminal: lua-term when installed, otherwise test(1), whose
-- file descriptor 2 is ours.
local function stderr_is_tty()
  local ok, term = pcall(require, "term")
  if ok and type(term) == "table" and term.isatty then
    return term.isatty(io.stderr) and true or false
  end
  return os.execute("test -t 2") == true
end
M.stderr_is_tty = stderr_is_tty

-- ---- progress bar ---------------------------------------------------------------
local function new_progress(out)
  local p = { shown = false }
  function p.update(done, total)
    if not total or total < 2 then return end
    local width = 30
    local filled = math.floor(width * done / total + 0.5)
    out:write(("\r[%s%s] %d/%d pages"):format(("#"):rep(filled), ("."):rep(width - filled),
      done, total))
    out:flush()
    p.shown = true
  end
  function p.finish()
    if p.shown then
      out:write("\r" .. (" "):rep(50) .. "\r")
      out:flush()
      p.shown = false
    end
  end
  return p
end

-- ---- the client -----------------------------------------------------------------
local function make_client(ctx)
  local opts = profile.resolve(ctx.profile, ctx.getenv)
  local unleashed = require "unleashed"
  return unleashed.new(opts)
end

-- ---- output formats -------------------------------------------------------------
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
  { "SubTotal", "SubTotal" },
  { "TaxTotal", "TaxTotal" },
  { "Total", "Total" },
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
}

local function cell(v, how)
  if v == nil then return "" end
  if how == "date" then return tostring(v):sub(1, 10) end
  if how == "count" then return type(v) == "table" and tostring(#v) or "" end
  if how == "money" then
    local n = tonumber(v)
    return n and string.format("%.2f", n) or tostring(v)
  end
  if how == "qty" then
    local n = tonumber(v)
    return n and csv.text(n) or tostring(v)
  end
  return csv.text(v)
end

local function write_table(out, columns, rows)
  local width = {}
  for c, col in ipairs(columns) do width[c] = #col[1] end
  local cells = {}
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c, col in ipairs(columns) do
      local s = cell(field(row, col[2]), col[3]):gsub("[\r\n]+", " ")
      cells[r][c] = s
      if utf8.len(s) and utf8.len(s) > width[c] then width[c] = utf8.len(s) end
    end
  end
  local function line(values)
    local parts = {}
    for c, col in ipairs(columns) do
      local s = values[c]
      local pad = (" "):rep(width[c] - (utf8.len(s) or #s))
      local right = col[3] == "money" or col[3] == "count" or col[3] == "qty"
      parts[c] = right and (pad .. s) or (c == #columns and s or s .. pad)
    end
    out:write((table.concat(parts, "  "):gsub("%s+$", "")), "\n")
  end
  local head = {}
  for c, col in ipairs(columns) do head[c] = col[1] end
  line(head)
  for _, values in ipairs(cells) do line(values) end
end

-- The library's encoder: it writes numbers without float noise and the API's
-- collections (PurchaseOrderLines, ...) as [] even when empty.
local function json_encoder()
  local json = require "unleashed.json"
  return {
    encode = function(v)
      local text, problem = json.encode(v)
      if not text then error(("json: %s %s"):format(problem.field or "value", problem.message), 0) end
      return text
    end,
  }
end

-- ---- po commands ------------------------------------------------------------------
local STATUSES = { "Parked", "Placed", "Costed", "Receipted", "Complete", "Deleted", "Unapproved" }

local function check_date(value, flag)
  if value:match("^%d%d%d%d%-%d%d%-%d%d$") or value:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d") then
    return value
  end
  usage_error(("%s: expected a date YYYY-MM-DD (or YYYY-MM-DDTHH:MM:SS), got %q"):format(flag, value),
    "po list")
end

local function check_format(value, allowed, topic)
  for _, f in ipairs(allowed) do
    if f == value then return value end
  end
  usage_error(("--format: expected one of %s, got %q"):format(table.concat(allowed, ", "), value), topic)
end

local function po_list(ctx, args)
  local opts, pos = parse_flags(args, { supplier = "value", status = "value", since = "value",
    warehouse = "value", format = "value", ["page-size"] = "value", profile = "value", help = "flag" },
    "po list")
  if opts.help then return ctx.help("po list") end
  if #pos > 0 then usage_error(("unexpected argument %q"):format(pos[1]), "po list") end
  local format = check_format(opts.format or "table", { "table", "csv", "json" }, "po list")
  ctx.profile = opts.profile or ctx.profile
  local filters = {}
  if opts.supplier then filters.supplierCode = opts.supplier end
  if opts.status then
    local ok = false
    for _, s in ipairs(STATUSES) do ok = ok or s:lower() == opts.status:lower() end
    if not ok then
      usage_error(("--status: expected one of %s, got %q"):format(table.concat(STATUSES, ", "),
        opts.status), "po list")
    end
    for _, s in ipairs(STATUSES) do
      if s:lower() == opts.status:lower() then filters.orderStatus = s end
    end
  end
  if opts.since then filters.modifiedSince = check_date(opts.since, "--since") end
  if opts.warehouse then filters.warehouseCode = opts.warehouse end

  local page_size
  if opts["page-size"] then
    page_size = math.tointeger(tonumber(opts["page-size"]))
    if not page_size or page_size < 1 or page_size > 1000 or not opts["page-size"]:match("^%d+$") then
      usage_error(("--page-size: expected an integer from 1 to 1000, got %q"):format(opts["page-size"]),
        "po list")
    end
  end

  local client = make_client(ctx)
  local out = ctx.stdout
  local progress = ctx.stderr_is_tty() and new_progress(ctx.stderr) or nil
  local each_opts = { progress = progress and progress.update or nil, page_size = page_size }
  local rows, count = {}, 0
  local json
  if format == "csv" then
    local header = {}
    for c, col in ipairs(LIST_COLUMNS) do header[c] = col[1] end
    out:write(csv.record(header))
  elseif format == "json" then
    json = json_encoder()
    out:write("[")
  end
  local ok, err = pcall(function()
    for po in client.purchase_orders:each(filters, each_opts) do
      count = count + 1
      if format == "csv" then
        local values = {}
        for c, col in ipairs(LIST_COLUMNS) do values[c] = field(po, col[2]) end
        out:write(csv.record(values, #LIST_COLUMNS))
      elseif format == "json" then
        out:write(count > 1 and ",\n" or "\n", json.encode(po))
      else
        rows[#rows + 1] = po
      end
    end
  end)
  if progress then progress.finish() end
  if not ok then error(err, 0) end
  if format == "json" then
    out:write(count > 0 and "\n]\n" or "]\n")
  elseif format == "table" then
    write_table(out, TABLE_COLUMNS, rows)
    ctx.stderr:write(("%d purchase order%s\n"):format(count, count == 1 and "" or "s"))
  end
  return 0
end

-- Finds an order by GUID or by order number.
local function find_order(client, ref)
  if ref:match(GUID_PATTERN) then
    return client.purchase_orders:get(ref)
  end
  local found
  for po in client.purchase_orders:each { orderNumber = ref } do
    if po.OrderNumber == ref then found = po end
  end
  if not found then
    -- orderNumber does not reach Deleted orders: look there too before giving up
    for po in client.purchase_orders:each { orderNumber = ref, orderStatus = "Deleted" } do
      if po.OrderNumber == ref then found = po end
    end
  end
  if not found then not_found(("no purchase order with number %q"):format(ref)) end
  return found
end

local function one_ref(args, topic, extra)
  local spec = { profile = "value", help = "flag" }
  for k, v in pairs(extra or {}) do spec[k] = v end
  local opts, pos = parse_flags(args, spec, topic)
  if opts.help then return opts end
  if #pos == 0 then usage_error("missing GUID or ORDER-NUMBER", topic) end
  if #pos > 1 then usage_error(("unexpected argument %q"):format(pos[2]), topic) end
  return opts, pos[1]
end

local function po_get(ctx, args)
  local opts, ref = one_ref(args, "po get", { format = "value" })
  if opts.help then return ctx.help("po get") end
  local format = check_format(opts.format or "table", { "table", "json" }, "po get")
  ctx.profile = opts.profile or ctx.profile
  local client = make_client(ctx)
  local po = find_order(client, ref)
  local out = ctx.stdout
  if format == "json" then
    out:write(json_encoder().encode(po), "\n")
    return 0
  end
  local header = {
    { "Order", "OrderNumber" }, { "Guid", "Guid" }, { "Status", "OrderStatus" },
    { "Supplier", "Supplier.SupplierCode" }, { "Supplier name", "Supplier.SupplierName" },
    { "Warehouse", "Warehouse.WarehouseCode" }, { "Currency", "Currency.CurrencyCode" },
    { "Order date", "OrderDate" }, { "Delivery date", "DeliveryDate" },
    { "Received", "ReceivedDate" }, { "Completed", "CompletedDate" },
    { "Supplier ref", "SupplierRef" }, { "Comments", "Comments" },
    { "Sub total", "SubTotal", "money" }, { "Tax total", "TaxTotal", "money" },
    { "Total", "Total", "money" },
  }
  for _, h in ipairs(header) do
    local v = field(po, h[2])
    if v ~= nil then
      out:write(("%-14s %s\n"):format(h[1] .. ":", (cell(v, h[3]):gsub("[\r\n]+", " "))))
    end
  end
  local lines = po.PurchaseOrderLines or {}
  out:write("\n")
  write_table(out, {
    { "LINE", "LineNumber", "qty" },
    { "PRODUCT", "Product.ProductCode" },
    { "DESCRIPTION", "Product.ProductDescription" },
    { "QTY", "OrderQuantity", "qty" },
    { "RECEIVED", "ReceiptQuantity", "qty" },
    { "UNIT PRICE", "UnitPrice", "qty" },
    { "LINE TOTAL", "LineTotal", "money" },
    { "TAX", "LineTax", "money" },
  }, lines)
  return 0
end

local function po_action(ctx, args, action)
  local topic = "po " .. action
  local opts, ref = one_ref(args, topic)
  if opts.help then return ctx.help(topic) end
  ctx.profile = opts.profile or ctx.profile
  local client = make_client(ctx)
  local po = find_order(client, ref)
  po[action](po)
  local when = action == "receipt" and po.ReceivedDate or po.CompletedDate
  ctx.stdout:write(("%s %s: status %s%s\n"):format(po.OrderNumber or po.Guid,
    action == "receipt" and "receipted" or "completed", tostring(po.OrderStatus),
    when and (", " .. (action == "receipt" and "received " or "completed ") .. tostring(when)) or ""))
  return 0
end

local function po(ctx, args)
  local sub = args[1]
  if sub == nil or sub == "--help" or sub == "-h" or sub == "help" then
    return ctx.help("po", sub == nil and 2 or 0)
  end
  local rest = table.move(args, 2, #args, 1, {})
  if sub == "list" then return po_list(ctx, rest) end
  if sub == "get" then return po_get(ctx, rest) end
  if sub == "receipt" or sub == "complete" then return po_action(ctx, rest, sub) end
  if sub == "sync" or sub == "watch" or sub == "report" then
    return require("unleashed.cli.sync").main(ctx, sub, rest)
  end
  usage_error(("unknown subcommand %q (list, get, receipt, complete, sync, watch, report)"):format(sub), "po")
end

-- ---- run ----------------------------------------------------------------------------
local function report_uncaught(ctx, prefix, err, traceback)
  local msg
  if type(err) == "table" and err.kind then
    msg = tostring(err)
    if msg:match("^table: ") then msg = tostring(err.message) end
  elseif type(err) == "string" or type(err) == "number" then
    msg = tostring(err)
  else
    local mt = getmetatable(err)
    msg = (mt and mt.__tostring) and tostring(err)
      or ("(error object is a %s value)"):format(type(err))
  end
  -- the library's errors already name it ("unleashed: ...")
  if msg:sub(1, #prefix) == prefix then prefix = "" end
  ctx.stderr:write(prefix, msg, "\n")
  if traceback then ctx.stderr:write(traceback, "\n") end
end

local function run(ctx, args)
  if args[1] == nil then usage_error("missing SCRIPT", "run") end
  if args[1] == "--help" or args[1] == "-h" then return ctx.help("run") end
  local script = args[1]
  local unleashed = require "unleashed"
  local script_arg = { [0] = script }
  for i = 2, #args do script_arg[i - 1] = args[i] end
  local client
  local env = setmetatable({ unleashed = unleashed, arg = script_arg }, {
    __index = function(t, k)
      if k == "client" then
        client = make_client(ctx)
        rawset(t, "client", client)
        return client
      end
      return _G[k]
    end,
  })
  local chunk, lerr = loadfile(script, "t", env)
  if not chunk then
    if not io.open(script, "r") then
      usage_error(("cannot open script %s"):format(script), "run")
    end
    ctx.stderr:write("unleashed: ", lerr, "\n")
    return 1
  end
  local traceback
  local results = table.pack(xpcall(chunk, function(e)
    if not (type(e) == "table" and e.kind) then
      -- the script's frames only: cut where the command called it
      traceback = debug.traceback(nil, 2):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
    end
    return e
  end, table.unpack(script_arg, 1, #script_arg)))
  if client and client.close then pcall(client.close, client) end
  if not results[1] then
    local err = results[2]
    report_uncaught(ctx, "unleashed: ", err, traceback)
    return type(err) == "table" and M.KIND_EXIT[err.kind] or 1
  end
  return 0
end

-- ---- sandbox --------------------------------------------------------------------
-- The sandbox runs in this process rather than as a child: a signal sent to
-- `unleashed sandbox` (a service manager's SIGTERM, a script's kill) reaches the
-- server itself, and nothing is left running behind it.
local function sandbox(ctx, args)
  local server = require "unleashed.sandbox.server"
  if args[1] == "--help" or args[1] == "-h" then
    ctx.help("sandbox")
    ctx.stdout:write("\nThe sandbox's own flags:\n\n")
    ctx.stdout:write(server.usage)
    return 0
  end
  ctx.stdout:flush()
  return server.main(args, ctx.stdout, ctx.stderr)
end

-- ---- main ----------------------------------------------------------------------------
local COMMANDS = { po = po, run = run, sandbox = sandbox }

-- Runs the command line in args (a table like the standalone interpreter's
-- `arg`). ctx overrides stdout, stderr, getenv and the terminal check (specs).
function M.main(args, ctx)
  ctx = ctx or {}
  ctx.stdout = ctx.stdout or io.stdout
  ctx.stderr = ctx.stderr or io.stderr
  ctx.getenv = ctx.getenv or os.getenv
  ctx.stderr_is_tty = ctx.stderr_is_tty or stderr_is_tty
  ctx.arg0 = ctx.arg0 or (args and args[0])
  function ctx.help(topic, code)
    local out = (code or 0) == 0 and ctx.stdout or ctx.stderr
    out:write(HELP[topic] or HELP.main)
    return code or 0
  end
  args = table.move(args or {}, 1, #(args or {}), 1, {})

  local traceback
  local ok, result = xpcall(function()
    -- global options come before the command
    while args[1] and args[1]:sub(1, 2) == "--" do
      local a = table.remove(args, 1)
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      if name == "help" then return ctx.help("main") end
      if name == "version" then
        local v = "0.1.0"
        local lok, core = pcall(require, "unleashed.core")
        if lok and type(core) == "table" and core.version then v = core.version end
        ctx.stdout:write("unleashed ", v, "\n")
        return 0
      end
      if name == "profile" then
        value = value or table.remove(args, 1)
        if not value then usage_error("--profile needs a value", "main") end
        ctx.profile = value
      else
        usage_error(("unknown flag --%s"):format(name), "main")
      end
    end
    local cmd = table.remove(args, 1)
    if cmd == nil then return ctx.help("main", 2) end
    if cmd == "help" then
      local topic = args[1] and table.concat(args, " ") or "main"
      return ctx.help(HELP[topic] and topic or "main")
    end
    local fn = COMMANDS[cmd]
    if not fn then usage_error(("unknown command %q"):format(cmd), "main") end
    return fn(ctx, args)
  end, function(e)
    if not (type(e) == "table" and e.kind) then traceback = debug.traceback(nil, 2) end
    return e
  end)
  if ok then
    ctx.stdout:flush()
    return result or 0
  end
  local err = result
  if type(err) == "table" and err.kind == "usage" and err.cli then
    ctx.stderr:write("unleashed: ", err.message, "\n")
    local topic = err.topic and err.topic ~= "main" and (" " .. err.topic) or ""
    ctx.stderr:write(("run 'unleashed%s --help' for usage\n"):format(topic))
    return 2
  end
  report_uncaught(ctx, "unleashed: ", err, traceback)
  return type(err) == "table" and M.KIND_EXIT[err.kind] or 1
end

return M
