-- The C pager (client:pager) against a scripted HTTP server on loopback:
-- order, the window bound, retries, cancellation and lifetime.
local core = require "unleashed.core"
local stub = require "support.stub_control"

local KEY = "pager-key"

local function new_client(base_url, extra)
  local opts = { api_id = "pager-company", api_key = KEY, base_url = base_url,
                 retry_base = 0.01, retry_cap = 0.5, timeout = 5 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return core.new_client(opts)
end

local function serve(script_src)
  local s = stub.start("return " .. script_src)
  finally(function() s:stop() end)
  return s
end

-- Pages answer out of order: later pages are often quicker than earlier ones.
local SHUFFLED = [[{ respond = function(req)
  local page = tonumber(req.path:match("(%d+)$"))
  return { status = 200, body = "page " .. page, delay = ((page * 7) % 5) * 0.03 }
end }]]

local function page_counts(reqs)
  local counts = {}
  for _, r in ipairs(reqs) do
    local page = tonumber(r.path:match("(%d+)$"))
    counts[page] = (counts[page] or 0) + 1
  end
  return counts
end

describe("client:pager", function()
  for _, conc in ipairs({ 1, 4, 8 }) do
    it(("hands out pages in order, each once, with concurrency %d"):format(conc), function()
      local s = serve(SHUFFLED)
      local c = new_client(s.url)
      local p = c:pager("/PurchaseOrders/Page/%d", { first = 2, last = 13, concurrency = conc,
                                                     query = { pageSize = 1000 } })
      local seen = {}
      for n, res in p.next, p do
        seen[#seen + 1] = n
        assert.are.equal(200, res.status)
        assert.are.equal("page " .. n, res.body)
        assert.are.equal(1, res.attempts)
        assert.is_true(res.sent)
      end
      assert.are.same({ 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 }, seen)
      assert.is_nil(p:next())
      local reqs = s:requests()
      assert.are.equal(12, #reqs)
      local counts = page_counts(reqs)
      for n = 2, 13 do assert.are.equal(1, counts[n]) end
      for _, r in ipairs(reqs) do
        assert.are.equal("pageSize=1000", r.query)
        assert.are.equal(core.sign("pageSize=1000", KEY), r.headers["api-auth-signature"])
        assert.are.equal("pager-company", r.headers["api-auth-id"])
        assert.are.equal("application/json", r.headers["accept"])
      end
    end)
  end

  it("never holds more than `concurrency` pages", function()
    local s = serve[[{ respond = function(req)
      local page = tonumber(req.path:match("(%d+)$"))
      return { status = 200, body = tostring(page), delay = 0.05 + (page % 3) * 0.03 }
    end }]]
    local c = new_client(s.url)
    local conc = 3
    local p = c:pager("/p/%d", { first = 1, last = 12, concurrency = conc })
    local max_open = 0
    for n in p.next, p do
      -- Handed page n: at most pages n+1 .. n+conc are held, so none beyond
      -- n+conc has been asked for, even while this caller dawdles.
      stub.sleep(0.02)
      for _, r in ipairs(s:requests()) do
        assert.truthy(tonumber(r.path:match("(%d+)$")) <= n + conc)
        if r.open > max_open then max_open = r.open end
      end
    end
    assert.truthy(max_open <= conc, max_open)
    assert.truthy(max_open >= 2, "transfers ran concurrently")
  end)

  it("retries a failed page and still hands pages out in order", function()
    local s = serve[[{ respond = function(req, n)
      local page = tonumber(req.path:match("(%d+)$"))
      _G.tries = _G.tries or {}
      tries[page] = (tries[page] or 0) + 1
      if page == 3 and tries[page] == 1 then return { status = 503, headers = { ["Retry-After"] = "0" } } end
      if page == 5 and tries[page] == 1 then return { status = 200, body = "cut short", partial = 3 } end
      return { status = 200, body = "page " .. page }
    end }]]
    local c = new_client(s.url)
    local p = c:pager("/p/%d", { last = 6, concurrency = 4, retries = 2 })
    local order = {}
    for n, res in p.next, p do
      order[#order + 1] = n
      assert.are.equal(200, res.status)
      assert.are.equal("page " .. n, res.body)
      if n == 3 then
        assert.are.equal(2, res.attempts)
        assert.are.equal(503, res.events[1].status)
        assert.are.equal(0, res.events[1].wait)
      elseif n == 5 then
        assert.are.equal(2, res.attempts)
        assert.are.equal("network", res.events[1].kind)
      else
        assert.are.equal(1, res.attempts)
      end
    end
    assert.are.same({ 1, 2, 3, 4, 5, 6 }, order)
    local counts = page_counts(s:requests())
    assert.are.same({ 1, 1, 2, 1, 2, 1 }, counts)
  end)

  it("hands out the last answer when retries run out", function()
    local s = serve[[{ respond = function(req)
      if req.path == "/p/2" then return { status = 500, body = "broken" } end
      return { status = 200 }
    end }]]
    local p = new_client(s.url):pager("/p/%d", { last = 3, retries = 1 })
    local n1 = p:next()
    local n2, res = p:next()
    assert.are.equal(1, n1)
    assert.are.equal(2, n2)
    assert.are.equal(500, res.status)
    assert.are.equal("broken", res.body)
    assert.are.equal(2, res.attempts)
    assert.are.equal(3, (p:next()))
    assert.is_nil(p:next())
  end)

  it("reports transport failures per page", function()
    local s = serve[[{ respond = function(req)
      if req.path == "/p/2" then return { status = 200, delay = 2 } end
      return { status = 200 }
    end }]]
    local p = new_client(s.url):pager("/p/%d", { last = 3, retries = 0, timeout = 0.3 })
    local _, r1 = p:next()
    local n2, r2 = p:next()
    local _, r3 = p:next()
    assert.are.equal(200, r1.status)
    assert.are.equal(2, n2)
    assert.are.equal("timeout", r2.error.kind)
    assert.truthy(r2.error.message:find("GET /p/2", 1, true))
    assert.are.equal(200, r3.status)
  end)

  it("cancels what is in flight on close()", function()
    local s = serve[[{ respond = function() return { status = 200, body = "x", delay = 0.1 } end }]]
    local c = new_client(s.url)
    local p = c:pager("/p/%d", { last = 30, concurrency = 2 })
    assert.are.equal(1, (p:next()))
    assert.are.equal(2, (p:next()))
    assert.are.equal(0, #s:events())
    p:close()
    p:close()
    -- Pages 3 and 4 were in flight: their connections are dropped, not
    -- drained, and nothing further is asked for.
    stub.sleep(0.4)
    local reqs = s:requests()
    assert.truthy(#reqs <= 4, #reqs)
    local in_flight = {}
    for _, r in ipairs(reqs) do
      if r.path == "/p/3" or r.path == "/p/4" then in_flight[r.conn] = true end
    end
    local dropped = 0
    for _, e in ipairs(s:events()) do
      if in_flight[e.conn] then dropped = dropped + 1 end
    end
    assert.truthy(dropped >= 1, "an in-flight connection was closed")
    assert.has_error(function() p:next() end, "pager is closed")
    -- The client is unharmed and its connection cache still works.
    assert.are.equal(200, c:request("GET", "/after").status)
  end)

  it("is closed by a to-be-closed variable on break", function()
    local s = serve[[{ respond = function() return { status = 200, delay = 0.05 } end }]]
    local c = new_client(s.url)
    local kept
    for n, _ in (function()
      local p = c:pager("/p/%d", { last = 50, concurrency = 4 })
      kept = p
      return p.next, p, nil, p
    end)() do
      if n == 2 then break end
    end
    assert.has_error(function() kept:next() end, "pager is closed")
    stub.sleep(0.2)
    assert.truthy(#s:requests() <= 6)
  end)

  it("survives garbage collection of an unclosed pager", function()
    local s = serve[[{ respond = function() return { status = 200, delay = 0.05 } end }]]
    local c = new_client(s.url)
    for _ = 1, 5 do
      local p = c:pager("/p/%d", { last = 20, concurrency = 4 })
      p:next()
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(200, c:request("GET", "/x").status)
    -- A pager and its client unreachable together.
    do
      local c2 = new_client(s.url)
      local p2 = c2:pager("/p/%d", { last = 20, concurrency = 4 })
      p2:next()
    end
    collectgarbage()
    collectgarbage()
  end)

  it("keeps the client alive and fails cleanly once the client is closed", function()
    local s = serve[[{ respond = function() return { status = 200 } end }]]
    local p = new_client(s.url):pager("/p/%d", { last = 4 })
    collectgarbage()
    collectgarbage()
    assert.are.equal(1, (p:next()))   -- the client is reachable through the pager
    local c = new_client(s.url)
    local q = c:pager("/p/%d", { last = 4 })
    q:next()
    c:close()
    assert.has_error(function() q:next() end, "client is closed")
    q:close()
  end)

  it("shares kept-alive connections with request()", function()
    local s = serve[[{ respond = function() return { status = 200 } end }]]
    local c = new_client(s.url)
    c:request("GET", "/first")
    local p = c:pager("/p/%d", { last = 5, concurrency = 1 })
    for _ in p.next, p do end
    c:request("GET", "/last")
    local reqs = s:requests()
    assert.are.equal(7, #reqs)
    for _, r in ipairs(reqs) do assert.are.equal(reqs[1].conn, r.conn) end
  end)

  -- A page's result is built after the pager is done with it, so a
  -- finalizer run while it is built (building allocates) may close the
  -- pager or its client, or take the next page, without a use after free
  -- (under --san one aborts) and without a page cut short or handed twice.
  for _, what in ipairs{ "pager", "client" } do
    it(("hands out whole pages when a finalizer closes the %s meanwhile #finalizer_race"):format(what),
        function()
      local mode = collectgarbage("incremental", 1, 1000, 1)
      local s = stub.start([[return { respond = function(req)
        local page = req.path:match("(%d+)$")
        local h = {}
        for i = 1, 60 do h["X-Mark-" .. i] = page end
        return { status = 200, headers = h, body = ("page " .. page .. " "):rep(100) }
      end }]])
      finally(function()
        s:stop()
        if mode == "generational" then collectgarbage("generational") end
      end)
      local c = new_client(s.url)
      local current   -- the pager inside next(), the one the finalizers close
      local closer = { __gc = function()
        if current then (what == "pager" and current or c):close() end
      end }
      local while_built = 0
      -- Whether a finalizer lands inside the build depends on where the
      -- collector's steps fall: enough rounds make it all but certain.
      for k = 1, 3000 do
        if what == "client" and tostring(c) == "unleashed.Client(closed)" then c = new_client(s.url) end
        local p = c:pager("/p/%d", { last = 3, concurrency = 2 })
        for _ = 1, k % 7 do setmetatable({}, closer) end
        for _ = 1, k % 13 do local _ = {} end
        current = p
        local ok, n, res = pcall(p.next, p)
        current = nil
        local closed = tostring(p) == "unleashed.Pager(closed)"
        if ok then
          assert.are.equal(1, n)
          assert.are.equal(("page 1 "):rep(100), res.body)
          for i = 1, 60 do assert.are.equal("1", res.headers["x-mark-" .. i]) end
          if closed then
            while_built = while_built + 1
            local again_ok, err = pcall(p.next, p)
            assert.is_false(again_ok)
            assert.truthy(tostring(err):find(what .. " is closed", 1, true), tostring(err))
          end
        else
          assert.truthy(tostring(n):find(what .. " is closed", 1, true), tostring(n))
        end
        p:close()
        if while_built >= 5 then break end
      end
      assert.truthy(while_built >= 1, "no finalizer closed the " .. what .. " while a page was built")
      collectgarbage()
    end)
  end

  it("hands each page out once when a finalizer takes pages meanwhile #finalizer_race", function()
    local mode = collectgarbage("incremental", 1, 1000, 1)
    local s = stub.start("return " .. SHUFFLED)
    finally(function()
      s:stop()
      if mode == "generational" then collectgarbage("generational") end
    end)
    local p = new_client(s.url):pager("/p/%d", { last = 40, concurrency = 3 })
    -- An error in a finalizer is only a warning: record, check afterwards.
    local seen, bad = {}, {}
    local function take(n, res)
      if n == nil then return end
      seen[n] = (seen[n] or 0) + 1
      if res.body ~= "page " .. n then bad[#bad + 1] = n end
    end
    local taker = { __gc = function() if p then take(p:next()) end end }
    while true do
      for _ = 1, 3 do setmetatable({}, taker) end
      local n, res = p:next()
      if n == nil then break end
      take(n, res)
    end
    p = nil
    collectgarbage()
    for i = 1, 40 do assert.are.equal(1, seen[i], "page " .. i) end
    assert.are.same({}, bad)
  end)

  it("refuses to go on when reading its options closed the client", function()
    for _, field in ipairs{ "first", "concurrency", "retries", "timeout", "query" } do
      local c = new_client("http://127.0.0.1:9")
      local opts = setmetatable({ last = 3 }, { __index = function(_, k)
        if k == field then c:close() end
      end })
      local ok, err = pcall(c.pager, c, "/p/%d", opts)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("client is closed", 1, true), field .. ": " .. tostring(err))
    end
  end)

  it("raises for bad arguments, naming them", function()
    local c = new_client("http://127.0.0.1:9")
    local cases = {
      { function() c:pager("/p", { last = 2 }) end, "path_format: must contain exactly one %d" },
      { function() c:pager("/p/%d/%d", { last = 2 }) end, "path_format: must contain exactly one %d" },
      { function() c:pager("p/%d", { last = 2 }) end, "path_format: must start with '/'" },
      { function() c:pager("/p/%d?x=1", { last = 2 }) end, "path_format: must not contain" },
      { function() c:pager("/PurchaseOrders/../_sandbox/%d", { last = 2 }) end,
        "path_format: must not have . or .. segments" },
      { function() c:pager("/p/%2E%2e/%d", { last = 2 }) end, "path_format: must not have . or .. segments" },
      { function() c:pager("/p/%d") end, "last: required" },
      { function() c:pager("/p/%d", { first = 3 }) end, "last: required" },
      { function() c:pager("/p/%d", { first = 3, last = 2 }) end, "last: must be an integer from 3" },
      { function() c:pager("/p/%d", { first = 0, last = 2 }) end, "first: must be an integer from 1" },
      { function() c:pager("/p/%d", { last = 2, concurrency = 0 }) end,
        "concurrency: must be an integer from 1 to 64" },
      { function() c:pager("/p/%d", { last = 2, concurrency = 65 }) end,
        "concurrency: must be an integer from 1 to 64" },
      { function() c:pager("/p/%d", { last = 2, query = 1 }) end, "query: must be a table" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(case[2], 1, true), ("expected %q in %q"):format(case[2], err))
    end
  end)
end)
