-- `unleashed po watch`: a script run for each changed order, at least once
-- (the checkpoint moves only after the script returns), a failing script
-- reported and retried next round, a clean stop on SIGINT or SIGTERM, and a
-- checkpoint file that a watch started again goes on from.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"
local files = require "support.files"
local socket = require "socket"

local ROOT = os.getenv("UNLEASHED_ROOT") or "."
local quote = sandbox.quote
local read_all, write_file = files.read_all, files.write_file

-- Starts the watch in the background: a handle with pid, and its output files.
local function start_watch(sb, dir, args)
  local words = { "env", "UNLEASHED_API_ID=" .. quote(sb.api_id), "UNLEASHED_API_KEY=" .. quote(sb.api_key),
                  "UNLEASHED_BASE_URL=" .. quote(sb.base_url), "lua5.4", quote(ROOT .. "/bin/unleashed"),
                  "po", "watch" }
  for _, a in ipairs(args) do words[#words + 1] = quote(a) end
  local w = { out = dir .. "/watch.out", err = dir .. "/watch.err" }
  w.pipe = assert(io.popen("exec sh -c " .. quote("echo $$; exec " .. table.concat(words, " ") .. " >>"
                                                  .. quote(w.out) .. " 2>>" .. quote(w.err)), "r"))
  w.pid = tonumber(w.pipe:read("l"))
  return w
end

local function stop_watch(w, signal)
  os.execute(("kill -%s %d"):format(signal or "TERM", w.pid))
  local _, how, code = w.pipe:close()
  return how == "exit" and code or 128 + code
end

-- Waits (up to `seconds`) until pred() is true.
local function eventually(pred, seconds, what)
  local deadline = socket.gettime() + (seconds or 20)
  while socket.gettime() < deadline do
    if pred() then return end
    socket.sleep(0.05)
  end
  error("timed out waiting for " .. (what or "a condition"), 2)
end

local function lines_of(path)
  local t = {}
  for l in read_all(path):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("po watch", function()
  local sb, client, dir
  setup(function()
    sb = sandbox.start{ seed = 200 }
    client = unleashed.new{ api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url }
  end)
  teardown(function()
    client:close()
    sb:stop()
  end)
  before_each(function() dir = files.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. quote(dir)) end)

  local function script(body)
    local path = dir .. "/script.lua"
    write_file(path, body)
    return path
  end

  it("runs the script for each changed order with client, unleashed, order and kind", function()
    local log = dir .. "/seen.txt"
    local s = script(([[
      local f = assert(io.open(%q, "a"))
      f:write(order.OrderNumber, " ", kind, " ", order.OrderStatus, " ", unleashed.version, " ",
              tostring(client):match("^unleashed%%.Client") or "?", "\n")
      f:close()
    ]]):format(log))
    local cp = dir .. "/checkpoint"
    local w = start_watch(sb, dir, { "--every", "0.2", "--run", s, "--checkpoint", cp })
    eventually(function() return read_all(cp) ~= "" end, 20, "the first round")
    local parked = client.purchase_orders:page(1, { orderStatus = "Parked", pageSize = 4 }).items
    for i = 1, 3 do parked[i]:update{ Comments = "watched " .. i } end
    parked[4]:delete()
    eventually(function() return #lines_of(log) >= 4 end, 20, "four orders")
    socket.sleep(0.5)
    assert.equal(0, stop_watch(w, "TERM"))
    local seen = {}
    for _, l in ipairs(lines_of(log)) do
      local number, kind, status, version, c = l:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
      assert.is_nil(seen[number], "ran twice for " .. tostring(number))
      seen[number] = kind
      assert.equal(unleashed.version, version)
      assert.equal("unleashed.Client", c)
      assert.equal(kind == "deleted" and "Deleted" or "Parked", status)
    end
    for i = 1, 3 do assert.equal("changed", seen[parked[i].OrderNumber]) end
    assert.equal("deleted", seen[parked[4].OrderNumber])
    assert.matches("watch stopped %(SIGTERM%)", read_all(w.err))
    assert.matches("^unleashed%-changes/1 since=", read_all(cp))
  end)

  it("reports a failing script and runs it again next round until it succeeds", function()
    local log, flag = dir .. "/runs.txt", dir .. "/fail"
    write_file(flag, "")
    local s = script(([[
      local f = assert(io.open(%q, "a"))
      local failing = io.open(%q, "r")
      f:write(order.OrderNumber, failing and " failed" or " ok", "\n")
      f:close()
      if failing then failing:close(); error("not today") end
    ]]):format(log, flag))
    local cp = dir .. "/checkpoint"
    -- A new watch starts from the server's Date, in whole seconds (at least
    -- once): let the second of the test before pass, so that only this
    -- test's order comes through.
    socket.sleep(1.1)
    local w = start_watch(sb, dir, { "--every", "0.2", "--run", s, "--checkpoint", cp })
    eventually(function() return read_all(cp) ~= "" end, 20, "the first round")
    local po = client.purchase_orders:page(1, { orderStatus = "Parked", pageSize = 1 }).items[1]
    po:update{ Comments = "fails first" }
    eventually(function() return #lines_of(log) >= 3 end, 20, "three tries")
    os.remove(flag)
    eventually(function() return read_all(log):find(po.OrderNumber .. " ok", 1, true) end, 20, "a success")
    socket.sleep(0.6)
    assert.equal(0, stop_watch(w, "INT"))
    local runs = lines_of(log)
    local ok_runs = 0
    for i, l in ipairs(runs) do
      assert.equal(po.OrderNumber, l:match("^(%S+)"))
      if l:find(" ok$") then
        ok_runs = ok_runs + 1
        assert.equal(#runs, i, "ran again after it succeeded")
      end
    end
    assert.equal(1, ok_runs)
    assert.is_true(#runs >= 3)
    local err = read_all(w.err)
    assert.is_truthy(err:find(po.OrderNumber .. " " .. po.Guid .. ": ", 1, true))
    assert.matches("failed %(it runs again next round%): [^\n]*not today", err)
    assert.matches("watch stopped %(SIGINT%)", err)
  end)

  it("stops after the order in hand on a signal, and a watch started again does the rest", function()
    local log = dir .. "/slow.txt"
    local s = script(([[
      local f = assert(io.open(%q, "a"))
      f:write(order.OrderNumber, "\n")
      f:close()
      require("socket").sleep(0.4)
    ]]):format(log))
    local cp = dir .. "/checkpoint"
    local w = start_watch(sb, dir, { "--every", "0.2", "--run", s, "--checkpoint", cp })
    eventually(function() return read_all(cp) ~= "" end, 20, "the first round")
    local before = read_all(cp)
    local changed = {}
    for i, po in ipairs(client.purchase_orders:page(1, { orderStatus = "Placed", pageSize = 5 }).items) do
      po:update{ Comments = "slow " .. i }
      changed[po.OrderNumber] = po.Guid
    end
    eventually(function() return #lines_of(log) >= 1 end, 20, "the first order")
    local t = socket.gettime()
    assert.equal(0, stop_watch(w, "TERM"))
    assert.is_true(socket.gettime() - t < 2, "it did not stop after the order in hand")
    local done = #lines_of(log)
    assert.is_true(done < 5, "the round was not cut short")
    assert.equal(before, read_all(cp), "the checkpoint moved past orders not done")
    -- Started again from the checkpoint: every changed order runs (at least once).
    local w2 = start_watch(sb, dir, { "--every", "0.2", "--run", s, "--checkpoint", cp })
    eventually(function() return read_all(cp) ~= before end, 30, "a round of the new watch")
    assert.equal(0, stop_watch(w2, "TERM"))
    local ran = {}
    for _, l in ipairs(lines_of(log)) do ran[l] = true end
    for n in pairs(changed) do assert.is_true(ran[n], n .. " never ran") end
    -- done now: the checkpoint holds them, to drop them when it reads them again
    for n, g in pairs(changed) do assert.is_truthy(read_all(cp):find(g .. "@", 1, true), n) end
  end)

  it("refuses bad flags before it starts", function()
    local function code(args)
      return select(3, os.execute("env UNLEASHED_API_ID=x UNLEASHED_API_KEY=y lua5.4 "
        .. quote(ROOT .. "/bin/unleashed") .. " po watch " .. table.concat(args, " ") .. " >/dev/null 2>&1"))
    end
    local s = script("return")
    assert.equal(2, (code{ "--run", quote(s) }))
    assert.equal(2, (code{ "--every", "1" }))
    assert.equal(2, (code{ "--every", "0", "--run", quote(s) }))
    assert.equal(2, (code{ "--every", "soon", "--run", quote(s) }))
    assert.equal(2, (code{ "--every", "1", "--run", quote(dir .. "/missing.lua") }))
    write_file(dir .. "/broken.lua", "this is not lua")
    assert.equal(1, (code{ "--every", "1", "--run", quote(dir .. "/broken.lua") }))
  end)
end)
