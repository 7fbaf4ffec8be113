-- The rockspec must build and install what the tree holds: every C file of
-- the core and the sandbox server, every Lua module, every command. A file
-- added without its rockspec line would work in the tree and be missing
-- after `luarocks make`.
local root = os.getenv("UNLEASHED_ROOT") or "."

local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
end

local function load_rockspec()
  local path = lines_of("ls " .. root .. "/*.rockspec")[1]
  local env = {}
  assert(loadfile(path, "t", env))()
  return env
end

local function sorted(t)
  table.sort(t)
  return t
end

describe("the rockspec", function()
  local rs = load_rockspec()
  local modules = rs.build.modules

  it("builds unleashed.core from every C file in src/", function()
    assert.are.same(lines_of("cd " .. root .. " && ls src/*.c"),
                    sorted({ table.unpack(modules["unleashed.core"].sources) }))
  end)

  it("builds the sandbox server from every C file in sandbox/", function()
    assert.are.same(lines_of("cd " .. root .. " && ls sandbox/*.c"),
                    sorted({ table.unpack(modules["unleashed.sandbox.httpd"].sources) }))
  end)

  it("builds the mirror's SQLite binding from every C file in sqlite/ and the core's JSON encoder", function()
    local want = lines_of("cd " .. root .. " && ls sqlite/*.c")
    want[#want + 1] = "src/encode.c"   -- the writer's JSON, as make builds it too (sqlite/sqlite.mk)
    assert.are.same(sorted(want), sorted({ table.unpack(modules["unleashed.sqlite"].sources) }))
    local mk = io.open(root .. "/sqlite/sqlite.mk"):read("a")
    assert.truthy(mk:find("$(BUILD)/obj/sqlite/encode.o: src/encode.c", 1, true))
  end)

  it("installs every Lua module under lua/ under its module name", function()
    local want = {}
    for _, file in ipairs(lines_of("cd " .. root .. "/lua && find . -name '*.lua'")) do
      local name = file:gsub("^%./", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      want[#want + 1] = name .. " = lua/" .. file:gsub("^%./", "")
    end
    local have = {}
    for name, src in pairs(modules) do
      if type(src) == "string" then have[#have + 1] = name .. " = " .. src end
    end
    assert.are.same(sorted(want), sorted(have))
  end)

  it("installs every command in bin/", function()
    local want = lines_of("cd " .. root .. " && ls bin/")
    local have = {}
    for name, src in pairs(rs.build.install.bin) do
      assert.are.equal("bin/" .. name, src)
      have[#have + 1] = name
    end
    assert.are.same(want, sorted(have))
  end)

  it("names the version the C core reports", function()
    local core = require "unleashed.core"
    assert.are.equal(core.version, rs.version:match("^(.-)%-%d+$"))
  end)
end)
