-- Every example in README.md and docs/reference.md, taken from the files at
-- test time and run as written, so that the documents cannot drift from the
-- code. By the block's language:
--   lua   `bin/unleashed run BLOCK.lua` against a fresh sandbox with its
--         default data (seed 100), its credentials in the environment: a
--         block may use `client` and `unleashed` as `unleashed run` gives them.
--         It must exit 0 with nothing on stderr.
--   sh    `sh -e BLOCK` as a new user runs it from a checkout: in a folder
--         that mirrors the checkout (links to its files, so what the commands
--         write lands in a temporary folder), with HOME there, and without
--         LUA_PATH, LUA_CPATH, UNLEASHED_* or the sanitizer's preload. A block
--         that starts a sandbox (`bin/unleashed sandbox`) holds its terminal,
--         as the README says: it runs in the background until it prints its
--         "listening on" line, serves the blocks after it, and is stopped at
--         the end. The one change made to the text: port 8080 becomes a free
--         port, so that a busy 8080 cannot fail the run.
--   c     must appear line for line in examples/host/host.c, which
--         spec/host_spec.lua builds and runs.
--   text  a synopsis: every line naming a command (`unleashed ...`,
--         `unleashed-sandbox ...`) must name one whose --help exits 0 and
--         mentions each --flag the line shows; the sandbox's synopsis shows
--         every flag its --help gives.
-- A block is left out only with a visible reason: a line
-- "*Not run by the specs: REASON*" right above it. A block without a
-- language fails: every block says what it is.
-- Some blocks make promises beyond "it runs": those get their own checks
-- below (README's first example receipts ACME's due orders, and only those).
-- The prose of README.md, docs/reference.md and docs/design.md points only
-- at files git tracks: what a fresh clone holds.
local sandbox = require "support.sandbox"
local stub = require "support.stub_control"
local files = require "support.files"
local unleashed = require "unleashed"

local ROOT = os.getenv("UNLEASHED_ROOT") or "."
local quote = sandbox.quote
local read_all, write_file, tmpdir = files.read_all, files.write_file, files.tmpdir

-- One order line of the product every seed has.
local function bolts(qty, price)
  return { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = qty, UnitPrice = price }
end

local SKIP = "^%*Not run by the specs: (.+)%*$"

-- The fenced blocks of a Markdown file: { lang, code, line, skip = reason }.
local function blocks_of(name)
  local text = assert(read_all(ROOT .. "/" .. name) ~= "" and read_all(ROOT .. "/" .. name), name)
  local out, current, before, blank = {}, nil, {}, false
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if current then
      if line:match("^```%s*$") then
        current.code = table.concat(current.lines, "\n") .. "\n"
        out[#out + 1] = current
        current = nil
      else
        current.lines[#current.lines + 1] = line
      end
    else
      local lang = line:match("^```(.*)$")
      if lang then
        -- the paragraph right above the fence: a reason to skip the block?
        local reason = table.concat(before, " "):match(SKIP)
        current = { lang = lang:match("^%s*(.-)%s*$"), lines = {}, line = n, file = name, skip = reason }
        before = {}
      elseif line:match("%S") then
        if blank then before = {} end
        before[#before + 1] = line
        blank = false
      else
        blank = true
      end
    end
  end
  assert(not current, ("%s: the block that starts on line %d never ends")
    :format(name, current and current.line or 0))
  return out
end

local function run_cmd(cmd)
  local out, err = os.tmpname(), os.tmpname()
  local _, how, code = os.execute(cmd .. " >" .. quote(out) .. " 2>" .. quote(err))
  local r = { code = how == "exit" and code or 128 + code, stdout = read_all(out), stderr = read_all(err) }
  os.remove(out)
  os.remove(err)
  return r
end

-- The environment of a new user: none of the test run's settings.
local CLEAN = table.concat({ "env", "-u LUA_PATH", "-u LUA_CPATH", "-u LUA_PATH_5_4", "-u LUA_CPATH_5_4",
  "-u LD_PRELOAD", "-u ASAN_OPTIONS", "-u UBSAN_OPTIONS", "-u UNLEASHED_API_ID", "-u UNLEASHED_API_KEY",
  "-u UNLEASHED_BASE_URL", "-u UNLEASHED_CLIENT_TYPE", "-u UNLEASHED_PROFILE", "-u XDG_CONFIG_HOME",
  "-u SSLKEYLOGFILE" }, " ")

-- ---- lua ------------------------------------------------------------------------

local function run_lua(block, sb, dir)
  local path = dir .. "/example.lua"
  write_file(path, block.code)
  local words = { "cd", quote(dir), "&&", "env", "-u UNLEASHED_PROFILE", "-u SSLKEYLOGFILE",
                  "UNLEASHED_API_ID=" .. quote(sb.api_id), "UNLEASHED_API_KEY=" .. quote(sb.api_key),
                  "UNLEASHED_BASE_URL=" .. quote(sb.base_url), quote(ROOT .. "/bin/unleashed"), "run",
                  "example.lua" }
  return run_cmd(table.concat(words, " ") .. " </dev/null")
end

-- Checks of blocks that promise more than running, found by their text:
-- before(client, sb) returns a state, after(client, sb, state, result) checks.
local CHECKS = {
  {
    file = "README.md", match = 'exactSupplierCode = "ACME", orderStatus = "Placed"',
    what = "receipts every Placed ACME order due by 2026-11-30, due on the day included, and no other",
    before = function(client)
      local function make(code, due)
        return client.purchase_orders:create {
          Supplier = { SupplierCode = code }, OrderStatus = "Placed", DeliveryDate = due,
          PurchaseOrderLines = { bolts(1, 1) },
        }
      end
      local state = { on_the_day = make("ACME", "2026-11-30"), day_after = make("ACME", "2026-12-01"),
                      other = make("ACME2", "2026-11-01"), due = {}, kept = {} }
      for po in client.purchase_orders:each { supplierCode = "ACME", orderStatus = "Placed" } do
        local is_due = po.Supplier.SupplierCode == "ACME" and po.DeliveryDate
          and po.DeliveryDate:sub(1, 10) <= "2026-11-30"
        table.insert(is_due and state.due or state.kept, po.Guid)
      end
      return state
    end,
    after = function(client, _, state, r)
      assert.is_true(#state.due > 1)
      for _, g in ipairs(state.due) do
        assert.equal("Receipted", client.purchase_orders:get(g).OrderStatus)
      end
      for _, g in ipairs(state.kept) do assert.equal("Placed", client.purchase_orders:get(g).OrderStatus) end
      assert.equal("Receipted", client.purchase_orders:get(state.on_the_day.Guid).OrderStatus)
      assert.equal("Placed", client.purchase_orders:get(state.day_after.Guid).OrderStatus)
      assert.equal("Placed", client.purchase_orders:get(state.other.Guid).OrderStatus)
      local printed = 0
      for _ in r.stdout:gmatch("PO%-%d+\tReceipted\t") do printed = printed + 1 end
      assert.equal(#state.due, printed, r.stdout)
    end,
  },
  {
    file = "README.md", match = 'Comments = "confirmed by phone"',
    what = "creates, adds a line, places, receipts and completes an order",
    after = function(client)
      local found
      for po in client.purchase_orders:each { exactSupplierCode = "ACME", orderStatus = "Complete" } do
        if po.Comments == "confirmed by phone" then found = po end
      end
      assert.is_table(found, "no Complete order with the example's comment")
      assert.equal(2, #found.PurchaseOrderLines)
      assert.is_string(found.ReceivedDate)
    end,
  },
  {
    file = "README.md", match = 'orderStatus = "Complete", pageSize = 1',
    what = "prints the server's refusal field by field",
    after = function(_, _, _, r)
      assert.truthy(r.stdout:find("only a Placed purchase order can be receipted", 1, true), r.stdout)
    end,
  },
}

local function checks_for(block)
  local found = {}
  for _, c in ipairs(CHECKS) do
    if c.file == block.file and block.code:find(c.match, 1, true) then found[#found + 1] = c end
  end
  return found
end

-- ---- sh -------------------------------------------------------------------------

-- A folder that looks like the checkout: a link to each of its top-level
-- entries, so that `make`, tools/ and bin/ work on the checkout while files
-- the commands create land here.
local function mirror()
  local dir = tmpdir()
  local p = assert(io.popen("ls -A " .. quote(ROOT)))
  for name in p:lines() do
    if name ~= ".git" then
      assert(os.execute(("ln -s %s %s"):format(quote(ROOT .. "/" .. name), quote(dir .. "/" .. name))))
    end
  end
  p:close()
  assert(os.execute("mkdir -p " .. quote(dir .. "/home")))
  return dir
end

local function starts_sandbox(code)
  return code:find("bin/unleashed sandbox", 1, true) or code:find("unleashed%-sandbox ")
end

local function sh_words(dir, path)
  return table.concat({ "cd", quote(dir), "&&", CLEAN, "HOME=" .. quote(dir .. "/home"), "timeout 300",
                        "sh -e", quote(path) }, " ")
end

-- Runs a block that starts a server in the background; returns its handle
-- once it printed "listening on", or an error message.
local function start_server(block_code, dir, n)
  local path = ("%s/block%d.sh"):format(dir, n)
  write_file(path, block_code)
  local out, err = ("%s/block%d.out"):format(dir, n), ("%s/block%d.err"):format(dir, n)
  -- its own session, so that stopping it stops everything it started
  local cmd = table.concat({ "cd", quote(dir), "&&", "setsid", CLEAN, "HOME=" .. quote(dir .. "/home"),
    "timeout 300 sh -e", quote(path), "<", "/dev/null", ">", quote(out), "2>", quote(err), "& echo $!" }, " ")
  local p = assert(io.popen(cmd, "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  for _ = 1, 1200 do   -- up to 120 s: the block may build first
    if read_all(out):find("listening on", 1, true) then return { pid = pid, out = out, err = err } end
    if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
    os.execute("sleep 0.1")
  end
  return nil, ("it never said \"listening on\"; stdout: %s; stderr: %s"):format(read_all(out), read_all(err))
end

local function stop_server(server)
  os.execute("kill -TERM -" .. server.pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not os.execute("kill -0 " .. server.pid .. " 2>/dev/null") then return end
    os.execute("sleep 0.1")
  end
  os.execute("kill -KILL -" .. server.pid .. " 2>/dev/null")
end

local SH_CHECKS = {
  ["sh tools/demo"] = function(r)
    assert.truthy(r.stdout:find("== sandbox listening on", 1, true), r.stdout)
    assert.truthy(r.stdout:find("%d+ orders created, 0 already there"), r.stdout)
    assert.truthy(r.stdout:find("0 orders created, %d+ already there"), r.stdout)
    assert.truthy(r.stdout:find("receipted %d+ orders?\n"), r.stdout)
    assert.truthy(r.stdout:find("landed total: ", 1, true), r.stdout)
  end,
  ["bin/unleashed po list --supplier ACME --status Placed"] = function(r, dir)
    assert.truthy(r.stdout:find("ORDER%s+STATUS%s+SUPPLIER"), r.stdout)
    assert.truthy(r.stdout:find("PO%-%d+%s+Placed%s+ACME%s"), r.stdout)
    assert.falsy(r.stdout:find("ACME2", 1, true), "--supplier ACME listed ACME2")
    assert.truthy(r.stdout:find("Order:%s+PO%-00000001"), r.stdout)
    assert.truthy(read_all(dir .. "/orders.csv"):find("^OrderNumber,Guid,OrderStatus,"))
    assert.truthy(r.stdout:find("Placed orders? from ACME due by"), r.stdout)
  end,
}

-- ---- text and c -------------------------------------------------------------------

local help_cache = {}
local function help_of(words)
  local key = table.concat(words, " ")
  if not help_cache[key] then
    local cmd
    if words[1] == "unleashed-sandbox" then
      cmd = "lua5.4 " .. quote(ROOT .. "/bin/unleashed-sandbox") .. " --help"
    else
      local args = {}
      for i = 2, #words do args[#args + 1] = quote(words[i]) end
      cmd = "lua5.4 " .. quote(ROOT .. "/bin/unleashed") .. " " .. table.concat(args, " ") .. " --help"
    end
    help_cache[key] = run_cmd(cmd .. " </dev/null")
  end
  return help_cache[key]
end

local function check_synopsis(block)
  local checked, words = 0, nil
  for line in block.code:gmatch("[^\n]+") do
    local head = line:match("^(unleashed%-?%S*) ")
    if head == "unleashed" or head == "unleashed-sandbox" then
      words = { head }
      for w in line:gsub("#.*$", ""):gmatch("%S+") do
        if w ~= head then
          if not w:match("^%l[%l%-]*$") then break end
          words[#words + 1] = w
        end
      end
    elseif not line:match("^%s") then
      words = nil
    end
    if words then
      local r = help_of(words)
      assert(r.code == 0, ("%s:%d: `%s --help` exits %d"):format(block.file, block.line,
        table.concat(words, " "), r.code))
      for flag in line:gmatch("%-%-[%l][%l%-]*") do
        assert(r.stdout:find(flag, 1, true), ("%s:%d: %s shows %s, which its --help does not mention")
          :format(block.file, block.line, table.concat(words, " "), flag))
      end
      checked = checked + 1
    end
  end
  -- The sandbox's synopsis is its whole list of flags: it shows every one its --help gives.
  if block.code:match("^unleashed%-sandbox ") then
    local r = help_of{ "unleashed-sandbox" }
    for flag in r.stdout:gmatch("%-%-[%l][%l%-]*") do
      assert(flag == "--help" or block.code:find(flag, 1, true), ("%s:%d: the unleashed-sandbox synopsis "
        .. "lacks %s, which its --help gives"):format(block.file, block.line, flag))
    end
  end
  return checked
end

local function check_c(block)
  local host = read_all(ROOT .. "/examples/host/host.c")
  local lines = {}
  for line in host:gmatch("[^\n]+") do lines[#lines + 1] = line:match("^%s*(.-)%s*$") end
  local want = {}
  for line in block.code:gmatch("[^\n]+") do want[#want + 1] = line:match("^%s*(.-)%s*$") end
  for i = 1, #lines - #want + 1 do
    local same = true
    for k = 1, #want do
      if lines[i + k - 1] ~= want[k] then same = false break end
    end
    if same then return true end
  end
  return false
end

-- ---- links ---------------------------------------------------------------------------

-- The files git tracks in the checkout, as a set, and their top-level names.
local function tracked()
  local set, top = {}, {}
  local p = assert(io.popen("git -C " .. quote(ROOT) .. " ls-files 2>/dev/null"))
  for path in p:lines() do
    set[path] = true
    top[path:match("^[^/]+")] = true
  end
  p:close()
  assert(next(set), "git ls-files listed nothing: the specs run from a git checkout")
  return set, top
end

-- A path as from the checkout's root: `path` written in a file of folder
-- `base` ("" for the root), "." and ".." worked out; nil when it leaves the checkout.
local function from_root(base, path)
  local parts = {}
  for seg in ((base ~= "" and base .. "/" or "") .. path):gmatch("[^/]+") do
    if seg == ".." then
      if #parts == 0 then return nil end
      parts[#parts] = nil
    elseif seg ~= "." then
      parts[#parts + 1] = seg
    end
  end
  return table.concat(parts, "/")
end

local function is_tracked(set, path)
  if path == nil or path == "" then return false end
  if set[path] then return true end
  local prefix = path .. "/"
  for f in pairs(set) do
    if f:sub(1, #prefix) == prefix then return true end
  end
  return false
end

-- What the prose of a Markdown file (outside fenced blocks) points at in the
-- checkout: every relative link target, and every code span that reads as a
-- path of the checkout (it has a "/", no blank or wildcard, and starts with
-- ".." or one of the checkout's top-level names). { line, text, path }.
local function pointers_of(name, top)
  local text = read_all(ROOT .. "/" .. name)
  local base = name:match("^(.*)/[^/]*$") or ""
  local out, fenced, n = {}, false, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:match("^```") then
      fenced = not fenced
    elseif not fenced then
      for target in line:gmatch("%]%(([^)%s]+)%)") do
        if not target:match("^#") and not target:match("^%a[%w+.-]*:") then
          out[#out + 1] = { line = n, text = target, path = from_root(base, target:gsub("#.*$", "")) }
        end
      end
      for span in line:gmatch("`([^`]+)`") do
        local first = span:match("^([^/]+)/")
        if first and not span:find("[%s*?{}<>]") and not span:find("://", 1, true)
            and (first == ".." or top[first]) then
          local path = span:gsub("#.*$", ""):gsub("/$", "")
          out[#out + 1] = { line = n, text = span,
                            path = first == ".." and from_root(base, path) or from_root("", path) }
        end
      end
    end
  end
  return out
end

describe("the documents' links", function()
  it("point only at files git tracks (nothing a fresh clone lacks)", function()
    local set, top = tracked()
    local checked = 0
    for _, name in ipairs{ "README.md", "docs/reference.md", "docs/design.md" } do
      for _, ptr in ipairs(pointers_of(name, top)) do
        checked = checked + 1
        assert(is_tracked(set, ptr.path), ("%s:%d points at %s, which is not a file of the checkout")
          :format(name, ptr.line, ptr.text))
      end
    end
    assert.is_true(checked > 20, "found too few links to check")
  end)

  it("are checked: a link outside the checkout, or to a file git does not track, is caught", function()
    local set = tracked()
    assert.is_false(is_tracked(set, from_root("docs", "../../shared/recorded/INDEX.md")))
    assert.is_false(is_tracked(set, from_root("docs", "../shared/recorded")))
    assert.is_false(is_tracked(set, from_root("", "build/unleashed/core.so")))
    assert.is_true(is_tracked(set, from_root("docs", "../README.md")))
    assert.is_true(is_tracked(set, from_root("", "spec/fixtures/recorded")))
  end)
end)

-- ---- the specs ---------------------------------------------------------------------

for _, name in ipairs { "README.md", "docs/reference.md" } do
  describe(name .. " examples", function()
    local blocks = blocks_of(name)
    local dir, server, port

    setup(function()
      dir = mirror()
      port = tostring(stub.free_port())
    end)

    teardown(function()
      if server then stop_server(server) end
      if dir then os.execute("rm -rf " .. quote(dir)) end
    end)

    it("has blocks, each with a language, each run or skipped for a stated reason", function()
      assert.is_true(#blocks > 3)
      for _, b in ipairs(blocks) do
        assert(b.lang == "lua" or b.lang == "sh" or b.lang == "c" or b.lang == "text",
          ("%s:%d: a block in %q: give it lua, sh, c or text"):format(name, b.line, b.lang))
        assert(b.skip == nil or b.skip:find("%S"), ("%s:%d: a skip without a reason"):format(name, b.line))
      end
    end)

    for _, b in ipairs(blocks) do
      local title = ("%s block at line %d"):format(b.lang, b.line)
      if b.skip then
        it(title .. " is not run: " .. b.skip, function()
          assert.truthy(#b.skip > 10)
        end)
      elseif b.lang == "lua" then
        local checks = checks_for(b)
        local what = #checks > 0 and checks[1].what or "runs with exit 0 and nothing on stderr"
        it(title .. " " .. what, function()
          local sb = sandbox.start { seed = 100 }
          local client = unleashed.new { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
          local work = tmpdir()
          local states = {}
          for i, c in ipairs(checks) do if c.before then states[i] = c.before(client, sb) end end
          local r = run_lua(b, sb, work)
          local ok, err = pcall(function()
            assert(r.code == 0, ("%s:%d: exit %d\n%s"):format(name, b.line, r.code, r.stderr))
            assert(r.stderr == "", ("%s:%d: stderr: %s"):format(name, b.line, r.stderr))
            for i, c in ipairs(checks) do if c.after then c.after(client, sb, states[i], r) end end
          end)
          client:close()
          sb:stop()
          os.execute("rm -rf " .. quote(work))
          if not ok then error(err, 0) end
        end)
      elseif b.lang == "sh" then
        it(title .. " runs as written from the checkout", function()
          -- never run what changes the machine: such a block needs a stated reason not to run
          for _, word in ipairs { "apt-get", "apt ", "luarocks", "sudo", "dpkg", "make install" } do
            assert(not b.code:find(word, 1, true), ("%s:%d: a block with %q must say why it is not run "
              .. "(*Not run by the specs: REASON*)"):format(name, b.line, word))
          end
          local code = b.code:gsub("8080", port)
          local n = b.line
          if starts_sandbox(code) then
            assert.is_nil(server, "a second sandbox block before the first was used")
            local s, why = start_server(code, dir, n)
            assert(s, ("%s:%d: %s"):format(name, b.line, tostring(why)))
            server = s
            return
          end
          local path = ("%s/block%d.sh"):format(dir, n)
          write_file(path, code)
          local r = run_cmd(sh_words(dir, path) .. " </dev/null")
          assert(r.code == 0, ("%s:%d: exit %d\nstdout: %s\nstderr: %s"):format(name, b.line, r.code,
            r.stdout:sub(-2000), r.stderr:sub(-2000)))
          for pattern, check in pairs(SH_CHECKS) do
            if b.code:find(pattern, 1, true) then check(r, dir) end
          end
        end)
      elseif b.lang == "c" then
        it(title .. " is examples/host/host.c's", function()
          assert(check_c(b), ("%s:%d: these lines are not in examples/host/host.c:\n%s")
            :format(name, b.line, b.code))
        end)
      else
        it(title .. " names commands and flags that exist", function()
          check_synopsis(b)
        end)
      end
    end

    it("leaves no sandbox running", function()
      if server then
        stop_server(server)
        assert.is_false(os.execute("kill -0 " .. server.pid .. " 2>/dev/null") == true)
        server = nil
      end
    end)
  end)
end
