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

  -- A script that logs "start NUMBER", sleeps, then logs "end NUMBER".
  local function slow_script(log, seconds)
    return script(([[
      local function note(what)
        local f = assert(io.open(%q, "a"))
        f:write(what, " ", order.OrderNumber, "\n")
        f:close()
      end
      note("start")
      require("socket").sleep(%s)
      note("end")
    ]]):format(log, seconds))
  end

  local function count(log, what)
    local n = 0
    for _, l in ipairs(lines_of(log)) do if l:match("^" .. what .. " ") then n = n + 1 end end
    return n
  end

  -- Changes `n` Placed orders; returns OrderNumber -> Guid.
  local function change(n, comment)
    local changed = {}
    for i, po in ipairs(client.purchase_orders:page(1, { orderStatus = "Placed", pageSize = n }).items) do
      po:update{ Comments = comment .. " " .. i }
      changed[po.OrderNumber] = po.Guid
    end
    return changed
  end

  it("on a signal while a script runs, finishes the round, saves its checkpoint, then stops", function()
    local log = dir .. "/slow.txt"
    local s = slow_script(log, 0.3)
    local cp = dir .. "/checkpoint"
    socket.sleep(1.1)
    local w = start_watch(sb, dir, { "--every", "0.2", "--run", s, "--checkpoint", cp })
    eventually(function() return read_all(cp) ~= "" end, 20, "the first round")
    local changed = change(5, "slow")
    eventually(function() return count(log, "start") >= 1 end, 20, "the first order")
    assert.equal(0, stop_watch(w, "TERM"))
    -- every order of the round ran to its end, once
    assert.equal(5, count(log, "start"))
    assert.equal(5, count(log, "end"))
    local text = read_all(cp)
    for n, g in pairs(changed) do assert.is_truthy(text:find(g .. "@", 1, true), n .. " is not in it") end
    local err = read_all(w.err)
    assert.matches("SIGTERM: the watch stops after this round", err)
    assert.matches("5 orders ran", err)
    assert.matches("watch stopped %(SIGTERM%)", err)
    -- started again from the checkpoint: the orders done do not come again,
    -- one changed since does
    local w2 = start_watch(sb, dir, { "--every", "0.2", "--run", s, "--checkpoint", cp })
    local later = client.purchase_orders:page(1, { orderStatus = "Parked", pageSize = 1 }).items[1]
    later:update{ Comments = "after the restart" }
    local ok, why = pcall(eventually, function() return count(log, "end") >= 6 end, 30, "the new order")
    assert.equal(0, stop_watch(w2, "INT"))
    assert(ok, why)
    assert.equal(6, count(log, "start"))
    local runs = 0
    for _, l in ipairs(lines_of(log)) do if l == "start " .. later.OrderNumber then runs = runs + 1 end end
    assert.equal(1, runs)
  end)

  it("saves the checkpoint of a round whose last script was running when the signal came", function()
    local log = dir .. "/last.txt"
    local s = slow_script(log, 0.5)
    local cp = dir .. "/checkpoint"
    socket.sleep(1.1)
    local w = start_watch(sb, dir, { "--every", "0.2", "--run", s, "--checkpoint", cp })
    eventually(function() return read_all(cp) ~= "" end, 20, "the first round")
    local changed = change(2, "last")
    eventually(function() return count(log, "start") >= 2 end, 20, "the last order")
    assert.equal(0, stop_watch(w, "INT"))
    assert.equal(2, count(log, "end"))
    for n, g in pairs(changed) do assert.is_truthy(read_all(cp):find(g .. "@", 1, true), n) end
  end)

  it("stops at once on a second signal, the checkpoint where it was", function()
    local log = dir .. "/stuck.txt"
    local s = slow_script(log, 60)
    local cp = dir .. "/checkpoint"
    local w = start_watch(sb, dir, { "--every", "0.2", "--run", s, "--checkpoint", cp })
    eventually(function() return read_all(cp) ~= "" end, 20, "the first round")
    local before = read_all(cp)
    change(2, "stuck")
    eventually(function() return count(log, "start") >= 1 end, 20, "the first order")
    -- the first signal is noted at once, and said between orders (once the
    -- stuck script returns); the second one ends the process inside it
    os.execute(("kill -TERM %d"):format(w.pid))
    socket.sleep(0.5)
    assert.equal(128 + 15, stop_watch(w, "TERM"))
    assert.equal(0, count(log, "end"))
    assert.is_nil(read_all(w.err):find("watch stopped", 1, true))
    assert.equal(before, read_all(cp))
  end)

  it("refuses a checkpoint file it cannot read, or that holds no checkpoint, naming it", function()
    local function watch_with(cp)
      local out = os.tmpname()
      local _, _, code = os.execute("env UNLEASHED_API_ID=x UNLEASHED_API_KEY=y UNLEASHED_BASE_URL="
        .. quote(sb.base_url) .. " lua5.4 " .. quote(ROOT .. "/bin/unleashed") .. " po watch --every 1 --run "
        .. quote(script("return")) .. " --checkpoint " .. quote(cp) .. " >/dev/null 2>" .. quote(out))
      local err = read_all(out)
      os.remove(out)
      return code, err
    end
    local folder = dir .. "/a-folder"
    os.execute("mkdir " .. quote(folder))
    local code, err = watch_with(folder)
    assert.equal(2, code)
    assert.is_truthy(err:find("--checkpoint " .. folder .. ": cannot read it", 1, true), err)
    for _, text in ipairs{ "", "unleashed-changes/1 since=garbage", "not a checkpoint" } do
      local cp = dir .. "/bad-checkpoint"
      write_file(cp, text)
      code, err = watch_with(cp)
      assert.equal(2, code)
      assert.is_truthy(err:find("--checkpoint " .. cp .. ": ", 1, true), err)
      assert.matches(text == "" and "is empty" or "does not hold a checkpoint", err)
      assert.equal(text, read_all(cp))
    end
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
