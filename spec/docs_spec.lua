-- docs/reference.md against the code: everything the modules, objects and
-- commands export has its heading or table row in the reference, and every
-- heading and row names something that exists, so the reference cannot drift.
-- The names come from the running code (the modules' tables, the userdata
-- metatables, a purchase order served by a sandbox, the commands' --help).
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"
local core = require "unleashed.core"
local filters = require "unleashed.filters"
local validate = require "unleashed.validate"
local cli = require "unleashed.cli"

local ROOT = os.getenv("UNLEASHED_ROOT") or "."
local quote = sandbox.quote

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local DOC = read_file(ROOT .. "/docs/reference.md")

-- ---- reading the reference -----------------------------------------------------

-- Every heading: { level = n, text = "..." , line = n }, in order.
local HEADINGS = {}
do
  local n, fenced = 0, false
  for line in (DOC .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:match("^```") then fenced = not fenced end
    local hashes, text = line:match("^(#+) (.-)%s*$")
    if hashes and not fenced then
      HEADINGS[#HEADINGS + 1] = { level = #hashes, text = text, line = n }
    end
  end
end

-- The text under the first heading line equal to `title` ("## Filters"), up
-- to the next heading of the same or a higher level.
local function section(title)
  local lines, inside, level, fenced = {}, false, nil, false
  for line in (DOC .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^```") then fenced = not fenced end
    local hashes, text = line:match("^(#+) (.-)%s*$")
    if hashes and not fenced then
      if inside and #hashes <= level then break end
      if not inside and hashes .. " " .. text == title then inside, level = true, #hashes end
    end
    if inside then lines[#lines + 1] = line end
  end
  assert(inside, "docs/reference.md has no heading " .. title)
  return table.concat(lines, "\n")
end

-- The first cells of the table rows in text that start with a name in
-- backquotes: "| `name` | ..." gives "name".
local function row_names(text)
  local names = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local name = line:match("^| `([^`]+)` |")
    if name then names[#names + 1] = name end
  end
  return names
end

-- The cells of the row whose first cell is `name`.
local function row(text, name)
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:find("| `" .. name .. "` |", 1, true) == 1 then
      local cells = {}
      for cell in line:gmatch("|([^|]*)") do cells[#cells + 1] = cell:match("^%s*(.-)%s*$") end
      cells[#cells] = nil   -- after the closing bar
      return cells
    end
  end
end

-- Headings sorted into what they name. A `###` heading that fits no form is
-- kept in `unknown`.
local NAMED = { module = {}, error = {}, json = {}, client_method = {}, client_field = {}, resource = {},
                order = {}, core = {}, Client = {}, Pager = {}, command = {}, c = {}, unknown = {} }
local function params_of(rest)
  if rest == "" then return nil end
  local inside = rest:match("^%((.*)%)$")
  if not inside then return false end
  local list = {}
  for p in inside:gmatch("[^,%s]+") do list[#list + 1] = p end
  return list
end
do
  local forms = {
    { "^unleashed%.Error%.([%a_][%w_]*)(.*)$", "error" },
    { "^unleashed%.json%.([%a_][%w_]*)(.*)$", "json" },
    { "^unleashed%.([%a_][%w_]*)(.*)$", "module" },
    { "^client%.purchase_orders:([%a_][%w_]*)(.*)$", "resource" },
    { "^client:([%a_][%w_]*)(.*)$", "client_method" },
    { "^client%.([%a_][%w_]*)(.*)$", "client_field" },
    { "^po:([%a_][%w_]*)(.*)$", "order" },
    { "^core%.([%a_][%w_]*)(.*)$", "core" },
    { "^Client:([%a_][%w_]*)(.*)$", "Client" },
    { "^Pager:([%a_][%w_]*)(.*)$", "Pager" },
    { "^unleashed ([%l][%l %-]*)()$", "command" },
    { "^(luaopen_[%w_]+)(%(L%))$", "c" },
    { "^([%u][%u_]+)()$", "c" },
  }
  for _, h in ipairs(HEADINGS) do
    if h.level == 3 then
      local placed = false
      for _, form in ipairs(forms) do
        local name, rest = h.text:match(form[1])
        if name then
          if type(rest) ~= "string" then rest = "" end
          local entry = { heading = h.text, params = params_of(rest) }
          if entry.params == false or NAMED[form[2]][name] then
            NAMED.unknown[#NAMED.unknown + 1] = h.text   -- malformed or repeated
          else
            NAMED[form[2]][name] = entry
          end
          placed = true
          break
        end
      end
      if not placed then NAMED.unknown[#NAMED.unknown + 1] = h.text end
    end
  end
end

-- ---- comparing ---------------------------------------------------------------------

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- Public names of a table: not starting with "_".
local function public_names(t)
  local out = {}
  for k in pairs(t) do
    if type(k) == "string" and not k:find("^_") then out[k] = true end
  end
  return out
end

-- Both directions: what exists but is not documented, what is documented but
-- does not exist. Each comes back as a sorted list so a failure names them.
local function compare(exported, documented)
  local missing, ghosts = {}, {}
  for k in pairs(exported) do if not documented[k] then missing[#missing + 1] = k end end
  for k in pairs(documented) do if not exported[k] then ghosts[#ghosts + 1] = k end end
  table.sort(missing)
  table.sort(ghosts)
  return missing, ghosts
end

local function assert_same(exported, documented, what)
  local missing, ghosts = compare(exported, documented)
  assert(#missing == 0, ("%s without an entry in docs/reference.md: %s"):format(what,
    table.concat(missing, ", ")))
  assert(#ghosts == 0, ("docs/reference.md documents %s that do not exist: %s"):format(what,
    table.concat(ghosts, ", ")))
  assert.is_true(next(exported) ~= nil, what .. ": nothing exported")
end

-- A function's heading has a parameter list, a field's has none; a Lua
-- function takes at least the parameters its heading lists (self aside).
local function assert_shapes(t, entries, what, is_method)
  for name, entry in pairs(entries) do
    local v = t[name]
    if type(v) == "function" then
      assert(entry.params, ("%s: heading %q lacks the parameter list of a function")
        :format(what, entry.heading))
      local info = debug.getinfo(v, "u")
      if debug.getinfo(v, "S").what == "Lua" and not info.isvararg then
        local takes = info.nparams - (is_method and 1 or 0)
        assert(#entry.params <= takes, ("%s: heading %q lists %d parameters, the function takes %d")
          :format(what, entry.heading, #entry.params, takes))
      end
    elseif v ~= nil then
      assert(entry.params == nil, ("%s: heading %q has a parameter list but %s is a %s")
        :format(what, entry.heading, name, type(v)))
    end
  end
end

-- Runs a program: its exit code and stdout.
local function run(words)
  local out = os.tmpname()
  local cmd = table.concat(words, " ") .. " </dev/null >" .. quote(out) .. " 2>/dev/null"
  local _, how, code = os.execute(cmd)
  local text = read_file(out)
  os.remove(out)
  return how == "exit" and code or 128 + code, text
end

local function unleashed_help(...)
  local words = { "lua5.4", quote(ROOT .. "/bin/unleashed") }
  for _, a in ipairs{ ... } do words[#words + 1] = quote(a) end
  words[#words + 1] = "--help"
  local code, text = run(words)
  assert.are.equal(0, code)
  return text
end

-- GitHub's anchor for a heading: lower case, punctuation but - and _ dropped,
-- spaces as -, repeats numbered -1, -2, ...
local function anchors()
  local seen, out = {}, {}
  for _, h in ipairs(HEADINGS) do
    local a = h.text:lower():gsub("[^%w%s_%-]", ""):gsub("%s", "-")
    local n = seen[a]
    seen[a] = (n or -1) + 1
    out[n and (a .. "-" .. (n + 1)) or a] = true
  end
  return out
end

-- ---- the specs -------------------------------------------------------------------------

describe("docs/reference.md", function()
  it("has only ### headings that name a public thing in one of the fixed forms", function()
    assert.are.same({}, NAMED.unknown)
    local count = 0
    for _, h in ipairs(HEADINGS) do if h.level == 3 then count = count + 1 end end
    assert.is_true(count > 60, "expected a heading per public function, found " .. count)
  end)

  it("documents every key of require('unleashed'), and nothing else, with the right shape", function()
    assert_same(public_names(unleashed), NAMED.module, "unleashed module keys")
    assert_shapes(unleashed, NAMED.module, "unleashed")
  end)

  it("documents every function of unleashed.json", function()
    assert_same(public_names(unleashed.json), NAMED.json, "unleashed.json keys")
    assert_shapes(unleashed.json, NAMED.json, "unleashed.json")
  end)

  it("documents every function and field of unleashed.Error, and every kind", function()
    assert_same(public_names(unleashed.Error), NAMED.error, "unleashed.Error keys")
    assert_shapes(unleashed.Error, NAMED.error, "unleashed.Error")
    local kinds = set_of(row_names(section("### unleashed.Error.kinds")))
    assert_same(unleashed.Error.kinds, kinds, "error kinds")
  end)

  it("documents every option of unleashed.new with the defaults a client really gets", function()
    local text = section("### unleashed.new(opts)")
    assert_same(public_names(validate.OPTIONS), set_of(row_names(text)), "unleashed.new options")
    local c <close> = unleashed.new{ api_id = "docs", api_key = "not-a-real-key" }
    for _, name in ipairs{ "base_url", "client_type", "concurrency", "page_size", "max_retries" } do
      local want = c[name]
      want = type(want) == "string" and ('`"' .. want .. '"`') or ("`" .. tostring(want) .. "`")
      local cells = row(text, name)
      assert.are.equal(want, cells and cells[3], "default of " .. name)
    end
    for _, name in ipairs(validate.REQUIRED_OPTIONS) do
      assert.are.equal("required", row(text, name)[3])
    end
  end)

  it("documents the environment from_env reads, and only that", function()
    local text = section("### unleashed.from_env(opts)")
    local vars = {}
    for name in pairs(set_of(row_names(text))) do vars[name] = "value-of-" .. name:lower() end
    vars.UNLEASHED_BASE_URL = "http://127.0.0.1:9"
    local c <close> = unleashed.from_env(nil, function(name) return vars[name] end)
    assert.are.equal("http://127.0.0.1:9", c.base_url)
    assert.are.equal(vars.UNLEASHED_CLIENT_TYPE, c.client_type)
    -- each variable documented as required is: without it, the error names it
    for name in pairs(vars) do
      if row(text, name)[2]:find("required", 1, true) then
        local ok, err = pcall(unleashed.from_env, nil, function(n) if n ~= name then return vars[n] end end)
        assert.is_false(ok)
        assert.are.equal("auth", err.kind)
        assert.are.equal(name, err.details[1].field)
      end
    end
  end)

  -- The options a call accepts, as its own error lists them ("valid: a, b").
  local function valid_list(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok)
    assert.is_true(unleashed.Error.is(err, "validation"))
    local names = {}
    for _, d in ipairs(err.details) do
      local list = d.message:match("%(valid: ([^)]+)%)")
      if list then for name in list:gmatch("[%w_]+") do names[name] = true end end
    end
    assert.is_true(next(names) ~= nil, "no list of valid names in " .. tostring(err))
    return names
  end

  it("documents every option of request, the listings and get", function()
    local c <close> = unleashed.new{ api_id = "docs", api_key = "not-a-real-key",
                                     base_url = "http://127.0.0.1:9" }
    local text = section("### client:request(method, path, opts)")
    assert_same(valid_list(c.request, c, "GET", "/Suppliers", { docs_unknown = 1 }), set_of(row_names(text)),
      "client:request options")
    text = section("### client.purchase_orders:each(filters, opts)")
    assert_same(valid_list(c.purchase_orders.each, c.purchase_orders, nil, { docs_unknown = 1 }),
      set_of(row_names(text)), "listing options")
    assert_same(valid_list(c.each, c, "Suppliers", nil, { docs_unknown = 1 }), set_of(row_names(text)),
      "client:each options")
    text = section("### client.purchase_orders:get(ref, opts)")
    local get_opts = valid_list(c.purchase_orders.get, c.purchase_orders, unleashed.guid(),
                                { docs_unknown = true })
    for name in pairs(get_opts) do
      assert.is_truthy(text:find("`" .. name .. "`", 1, true), "get option " .. name .. " undocumented")
    end
  end)

  it("documents every purchase order filter", function()
    local documented = set_of(row_names(section("## Filters")))
    assert_same(filters.PURCHASE_ORDER, documented, "purchase order filters")
  end)

  it("names every field decoded as a Lua integer", function()
    local text = section("## Values: dates, decimals, null")
    for name in pairs(require("unleashed.json").INTEGER_FIELDS) do
      assert.is_truthy(text:find("`" .. name .. "`", 1, true), "integer field " .. name .. " undocumented")
    end
  end)

  it("documents every function of unleashed.core and the methods of its userdata", function()
    assert_same(public_names(core), NAMED.core, "unleashed.core keys")
    assert_shapes(core, NAMED.core, "unleashed.core")
    local reg = debug.getregistry()
    for _, name in ipairs{ "Client", "Pager" } do
      local mt = reg["unleashed." .. name]
      assert.are.equal("table", type(mt), "no metatable unleashed." .. name)
      assert.are.equal("unleashed." .. name, mt.__name)
      assert_same(public_names(mt.__index), NAMED[name], "unleashed." .. name .. " methods")
    end
  end)

  it("documents every function and macro of the public C header", function()
    local header = read_file(ROOT .. "/src/unleashed.h")
    local exported = {}
    for line in (header .. "\n"):gmatch("([^\n]*)\n") do
      local macro = line:match("^#%s*define%s+([%u_][%w_]*)")
      if macro and macro ~= "UNLEASHED_H" then exported[macro] = true end   -- not the include guard
      local fn = not line:find("^%s*#") and line:match("^UNLEASHED_API%s+[%w_%s%*]-([%w_]+)%s*%(")
      if fn then exported[fn] = true end
    end
    assert.is_true(exported.luaopen_unleashed_core)
    assert_same(exported, NAMED.c, "unleashed.h names")
  end)

  it("documents every command of `unleashed` and every flag of each command's --help", function()
    local main = unleashed_help()
    local commands = {}
    local block = main:match("\ncommands:\n(.-)\n\n")
    assert.is_truthy(block, "no commands: block in unleashed --help")
    for line in (block .. "\n"):gmatch("([^\n]*)\n") do
      local name = line:match("^  (%l[%l %-]-%l)%s%s")
      if name then commands[name] = true end
    end
    assert_same(commands, NAMED.command, "unleashed commands")
    local intro = section("## The `unleashed` command")
    for flag in main:match("\noptions[^\n]*:\n(.-)\n\n"):gmatch("%-%-[%l%-]+") do
      assert.is_truthy(intro:find("`" .. flag, 1, true), "global option " .. flag .. " undocumented")
    end
    for name in pairs(commands) do
      local words = {}
      for w in name:gmatch("%S+") do words[#words + 1] = w end
      local help = unleashed_help(table.unpack(words))
      -- a command's own section, and the options every command takes (the
      -- table before the first command's heading)
      local text = section("### unleashed " .. name) .. intro:match("^(.-)\n### ")
      -- `unleashed sandbox --help` adds the sandbox's own flags, documented with it
      if name == "sandbox" then text = text .. section("## The `unleashed-sandbox` command") end
      for flag in help:gmatch("%-%-[%l][%l%-]*") do
        assert.is_truthy(text:find(flag, 1, true), ("unleashed %s: flag %s undocumented"):format(name, flag))
      end
    end
  end)

  it("documents every exit code of the command", function()
    local codes, rows = {}, {}
    for _, code in pairs(cli.EXIT) do codes[tostring(code)] = true end
    for _, name in ipairs(row_names(section("## The `unleashed` command"))) do
      if name:find("^%d+$") then rows[name] = true end
    end
    assert_same(codes, rows, "exit codes")
  end)

  it("documents every flag of unleashed-sandbox, as its --help spells it", function()
    local code, help = sandbox.run{ "--help" }
    assert.are.equal(0, code)
    local flags = {}
    for line in (help .. "\n"):gmatch("([^\n]*)\n") do
      local flag, value = line:match("^  (%-%-[%l][%l%-]*)( ?[^%s]*)")
      if flag then flags[flag .. value:gsub("%s", "")] = true end
    end
    local rows = {}
    for _, name in ipairs(row_names(section("## The `unleashed-sandbox` command"))) do
      if name:find("^%-%-") then rows[name:gsub("(%S) ", "%1")] = true end
    end
    assert_same(flags, rows, "unleashed-sandbox flags")
  end)

  it("holds Lua examples that compile and links that land on a heading", function()
    local blocks = 0
    for code in DOC:gmatch("```lua\n(.-)\n```") do
      blocks = blocks + 1
      local chunk, err = load(code, "=reference", "t")
      assert(chunk, err)
    end
    assert.is_true(blocks > 3)
    local targets = anchors()
    for anchor in DOC:gmatch("%]%(#([^)]+)%)") do
      assert(targets[anchor], "link to #" .. anchor .. " has no heading")
    end
  end)

  describe("against a sandbox", function()
    local sb, client
    local events = {}

    setup(function()
      sb = sandbox.start{ seed = 20 }
      client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                              on_request = function(ev) events[#events + 1] = ev end }
    end)

    teardown(function()
      if client then client:close() end
      if sb then sb:stop() end
    end)

    it("documents every method and field of a client", function()
      local methods = public_names(getmetatable(client).__index)
      assert_same(methods, NAMED.client_method, "client methods")
      assert_shapes(client, NAMED.client_method, "client", true)
      assert_same(public_names(client), NAMED.client_field, "client fields")
      assert_same(public_names(getmetatable(client.purchase_orders).__index), NAMED.resource,
        "client.purchase_orders methods")
      assert_shapes(client.purchase_orders, NAMED.resource, "client.purchase_orders", true)
    end)

    it("documents every method of a purchase order the server handed back", function()
      local page = client.purchase_orders:page(1, { pageSize = 1 })
      local po = page.items[1]
      assert.are.equal("string", type(po.Guid))
      local methods = getmetatable(po).__index
      assert_same(public_names(methods), NAMED.order, "purchase order methods")
      assert_shapes(po, NAMED.order, "po", true)
      -- a method does what the reference says: refresh returns the object, same order
      assert.are.equal(po, po:refresh())
      assert.are.equal(page.items[1].Guid, po.Guid)
    end)

    it("documents every field of res, its events and the on_request event", function()
      local _, res = client:request("GET", "/PurchaseOrders", { query = { pageSize = 1 } })
      local block = section("### Client:request(method, path, opts)"):match("```lua\n(.-)\n```")
      for _, name in ipairs(sorted_keys(res)) do
        assert.is_truthy(block:find("%f[%w_]" .. name .. " = "), "res." .. name .. " undocumented")
      end
      local events_line = block:match("events = (.-)\n")
      for _, ev in ipairs(res.events) do
        for _, name in ipairs(sorted_keys(ev)) do
          assert.is_truthy(events_line:find("%f[%w_]" .. name .. " = "),
            "res.events[i]." .. name .. " undocumented")
        end
      end
      assert.is_true(#events > 0)
      local documented = set_of(row_names(section("### client.on_request")))
      for _, ev in ipairs(events) do
        for _, name in ipairs(sorted_keys(ev)) do
          assert.is_true(documented[name], "on_request event field " .. name .. " undocumented")
        end
      end
    end)
  end)
end)
