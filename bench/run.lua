-- make bench: every benchmark of the project in one run, each figure printed
-- with the baseline measured in this same run, the ratio, the target and
-- whether it was met, and a note wherever the sandbox (not the client) set
-- the pace. Run through bench/run, which sets LUA_PATH, LUA_CPATH and BUILD.
local lib = require "benchlib"
local cjson = require "cjson"
local socket = require "socket"

local ROOT = assert(os.getenv("UNLEASHED_ROOT"), "run through bench/run")
local BUILD = os.getenv("BUILD") or "build"
local FLOOR = ROOT .. "/" .. BUILD .. "/bench/floor"
local SANDBOX = ROOT .. "/bin/unleashed-sandbox"
local PYTHON = "/usr/bin/python3"
local BASELINE = ROOT .. "/bench/baseline.py"
local CLIENT = "lua5.4 " .. ROOT .. "/bench/client.lua"
local INPROC = "lua5.4 " .. ROOT .. "/bench/inproc.lua"

-- The workloads of the issue.
local LIST_SEED, LATENCY_MS = 20000, 50
local PAGE_SIZES, CONCURRENCIES = { 200, 1000 }, { 1, 4, 8 }
local LIST_RUNS = 3                      -- each listing figure is the median of this many runs
local GETS = 5000
local MEM_COUNTS = { 10000, 100000 }
local MEM_SEED = 100000                  -- one listing of 100,000 orders, no latency
-- A sandbox whose CPU time is at least this share of the wall time was busy
-- on its one Lua thread all along: it, not the client, set the pace.
local BUSY = 0.85

local API_ID = "bench-" .. string.format("%08x", math.random(0, 0x7fffffff))
local API_KEY = string.format("%08x%08x%08x", math.random(0, 0x7fffffff),
                              math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))

-- ---- processes ---------------------------------------------------------

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

local CLK_TCK = tonumber(capture("getconf CLK_TCK")) or 100

-- Runs a benchmark child that prints one JSON line; returns the table, or
-- nil and what went wrong (its stderr's last lines).
local function run_json(cmd, base_url)
  local err = os.tmpname()
  local env = ("BENCH_BASE_URL=%s BENCH_API_ID=%s BENCH_API_KEY=%s "):format(
    sh_quote(base_url or ""), sh_quote(API_ID), sh_quote(API_KEY))
  local out = capture(env .. cmd .. " 2>" .. sh_quote(err))
  local errtext = (read_file(err) or ""):gsub("%s+$", "")
  os.remove(err)
  local last = out:match("([^\n]*)$")
  local ok, t = pcall(cjson.decode, last or "")
  if ok and type(t) == "table" then return t end
  local msg = errtext ~= "" and errtext or out
  return nil, (msg:gsub(".*\n(.-\n.-)$", "%1"))
end

local sandboxes = {}

local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  return stat:match("%) (%a)") ~= "Z"
end

-- CPU seconds (user + system, all threads) the process has used so far.
local function cpu_of(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then return nil end
  local fields = {}
  for f in stat:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = f end
  -- after the command name: state is field 3, utime 14, stime 15 (1-based in proc(5))
  return (tonumber(fields[12]) + tonumber(fields[13])) / CLK_TCK
end

local function start_sandbox(seed, latency_ms)
  local log = os.tmpname()
  local cmd = ("%s --host 127.0.0.1 --port 0 --seed %d --latency-ms %d --api-id %s --api-key %s --admin"
               .. " >%s 2>&1 & echo $!"):format(sh_quote(SANDBOX), seed, latency_ms,
                                               sh_quote(API_ID), sh_quote(API_KEY), sh_quote(log))
  local t0 = lib.now()
  local pid = tonumber(capture(cmd))
  if not pid then return nil, "could not start " .. SANDBOX end
  local sb = { pid = pid, log = log, seed = seed, latency_ms = latency_ms }
  sandboxes[#sandboxes + 1] = sb
  while true do
    local text = read_file(log) or ""
    local url = text:match("listening on (%S+)")
    if url then
      sb.url, sb.start_seconds = url, lib.now() - t0
      return sb
    end
    if not alive(pid) then
      return nil, "the sandbox exited: " .. text:gsub("%s+$", ""):sub(-300)
    end
    if lib.now() - t0 > 300 then return nil, "the sandbox did not start within 300 s" end
    socket.sleep(0.05)
  end
end

local function stop_sandbox(sb)
  if sb.stopped then return end
  sb.stopped = true
  os.execute("kill " .. sb.pid .. " 2>/dev/null")
  local t0 = lib.now()
  while alive(sb.pid) and lib.now() - t0 < 10 do socket.sleep(0.05) end
  if alive(sb.pid) then os.execute("kill -9 " .. sb.pid .. " 2>/dev/null") end
  os.remove(sb.log)
end

-- The sandbox's call counter (--admin): counts the requests a run made.
local http = require "socket.http"
local ltn12 = require "ltn12"

local function admin(sb, method, path)
  local chunks = {}
  local ok, code = http.request{ url = sb.url .. path, method = method,
                                 sink = ltn12.sink.table(chunks) }
  if not ok or code ~= 200 then return nil end
  local okj, t = pcall(cjson.decode, table.concat(chunks))
  return okj and t or nil
end

-- Runs a child against a sandbox; adds the sandbox's CPU time and the number
-- of API calls it answered during the run.
local function measure(sb, cmd)
  admin(sb, "POST", "/_sandbox/reset")
  local c0 = cpu_of(sb.pid)
  local t, err = run_json(cmd, sb.url)
  if not t then return nil, err end
  t.sandbox_cpu = cpu_of(sb.pid) - c0
  local stats = admin(sb, "GET", "/_sandbox/stats")
  t.calls = stats and stats.Total or nil
  return t
end

-- ---- the sandbox's own API, signed by hand (no client involved) ---------

local function signed_get(sb, path, query)
  local core = require "unleashed.core"
  local chunks = {}
  local ok, code = http.request{
    url = sb.url .. path .. (query ~= "" and "?" .. query or ""),
    headers = { ["accept"] = "application/json", ["content-type"] = "application/json",
                ["api-auth-id"] = API_ID, ["api-auth-signature"] = core.sign(query, API_KEY),
                ["client-type"] = "lua-unleashed/bench" },
    sink = ltn12.sink.table(chunks) }
  if not ok or code ~= 200 then return nil, "GET " .. path .. ": " .. tostring(code) end
  return cjson.decode(table.concat(chunks))
end

-- ---- output --------------------------------------------------------------

local summary = {}      -- every figure that has a target, for the closing table
local notes = {}

local function say(fmt, ...) io.stdout:write(fmt:format(...), "\n"); io.stdout:flush() end

local function verdict(ok) return ok and "MET" or "MISSED" end

local function target(name, value_text, target_text, ok, why)
  summary[#summary + 1] = { name = name, value = value_text, target = target_text,
                            verdict = ok == nil and "N/A" or verdict(ok), why = why }
  return ok == nil and "N/A" or verdict(ok)
end

local function secs(x) return x and ("%.3f s"):format(x) or "-" end
local function ratio(x) return x and ("%.2fx"):format(x) or "-" end
local function rate(x) return x and ("%.0f/s"):format(x) or "-" end

local function available(kind)
  if kind == "sandbox" then
    local f = io.open(SANDBOX, "r")
    if not f then return false, "bin/unleashed-sandbox is not there yet" end
    f:close()
    return true
  elseif kind == "client" then
    local ok, m = pcall(require, "unleashed")
    if not ok then return false, "require 'unleashed' fails: " .. tostring(m):match("[^\n]*") end
    if type(m) ~= "table" or type(m.new) ~= "function" then
      return false, "unleashed.new is not there yet"
    end
    local core = require "unleashed.core"
    if type(core.new_client) ~= "function" then return false, "core.new_client is not there yet" end
    return true
  elseif kind == "floor" then
    local f = io.open(FLOOR, "r")
    if not f then return false, FLOOR .. " is not built (make bench builds it)" end
    f:close()
    return true
  end
end

-- ---- the run -------------------------------------------------------------

local function header()
  local cores = capture("nproc")
  say("lua-unleashed benchmarks (make bench)")
  say("machine: %s cores (nproc), %s, %s, libcurl %s, %s", cores, capture("uname -sm"), _VERSION,
      capture("pkg-config --modversion libcurl"), capture(PYTHON .. " --version"))
  say("run: %s", os.date("!%Y-%m-%d %H:%M:%S UTC"))
  say("client, sandbox and baselines share these %s cores; every ratio below is against a figure", cores)
  say("measured in this same run. Listing figures are medians of %d runs.", LIST_RUNS)
  return tonumber(cores)
end

local inproc   -- server-side figures measured without HTTP (sections 4 and 5)

local function section_listing(have_client)
  say("")
  say("== 1. Full listing under latency: %d orders, --latency-ms %d ==", LIST_SEED, LATENCY_MS)
  local sb, err = start_sandbox(LIST_SEED, LATENCY_MS)
  if not sb then
    say("  not available: %s", err)
    target("listing c8 vs baseline", "-", ">= 6x", nil, err)
    return
  end
  say("  sandbox --seed %d --latency-ms %d started in %.1f s", LIST_SEED, LATENCY_MS, sb.start_seconds)
  for _, ps in ipairs(PAGE_SIZES) do
    local pages = math.ceil(LIST_SEED / ps)
    say("")
    say("  page size %d (%d pages); limit = ceil(%d / concurrency) x %d ms", ps, pages, pages, LATENCY_MS)
    say("  %-22s %9s %8s %12s %9s %9s %8s %6s %s", "", "seconds", "orders", "vs baseline", "limit",
        "vs limit", "cli CPU", "calls", "sandbox CPU/wall")
    local function median_run(cmd)
      local runs, walls, cpu, wall_sum, last = {}, {}, 0, 0, nil
      for i = 1, LIST_RUNS do
        local t, e = measure(sb, cmd)
        if not t then return nil, e end
        runs[i], walls[i] = t, t.seconds
        cpu, wall_sum, last = cpu + t.sandbox_cpu, wall_sum + t.seconds, t
      end
      local m = lib.median(walls)
      local pick
      for _, t in ipairs(runs) do if t.seconds == m then pick = t end end
      pick = pick or last
      pick.median = m
      pick.sandbox_share = cpu / wall_sum
      return pick
    end
    local base, berr = median_run(("%s %s list %s %s %s %d"):format(PYTHON, sh_quote(BASELINE),
      sh_quote(sb.url), sh_quote(API_ID), sh_quote(API_KEY), ps))
    if not base then
      say("  baseline failed: %s", berr)
    else
      say("  %-22s %9s %8d %12s %9s %9s %8s %6s %5.0f%%", "baseline (python)", secs(base.median),
          base.orders, "1.00x", "", "", secs(base.cpu_seconds), tostring(base.calls or "-"),
          base.sandbox_share * 100)
    end
    for _, c in ipairs(CONCURRENCIES) do
      local limit = math.ceil(pages / c) * LATENCY_MS / 1000
      local name = ("client c%d"):format(c)
      if not have_client then
        say("  %-22s not available yet (%s)", name, have_client == false and "client" or "")
      else
        local t, e = median_run(("%s list %d %d"):format(CLIENT, ps, c))
        if not t then
          say("  %-22s failed: %s", name, e)
          if c == 8 then
            target(("listing ps%d c8 vs baseline"):format(ps), "failed", ">= 6x", false, e)
            target(("listing ps%d c8 vs limit"):format(ps), "failed", "<= 1.3x", false, e)
          end
        else
          local speedup = base and base.median / t.median
          local vs_limit = t.median / limit
          say("  %-22s %9s %8d %12s %9s %9s %8s %6s %5.0f%%", name, secs(t.median), t.orders,
              ratio(speedup), secs(limit), ratio(vs_limit), secs(t.cpu_seconds),
              tostring(t.calls or "-"), t.sandbox_share * 100)
          if t.orders ~= LIST_SEED then
            say("  !! %s saw %d orders, not %d", name, t.orders, LIST_SEED)
          end
          if c == 8 then
            -- What the sandbox alone needs: its one Lua thread renders every page in turn.
            local page_ms = inproc and (ps == 1000 and inproc.page1000_ms or inproc.page200_ms)
            local render = page_ms and pages * page_ms / 1000
            local bound = t.sandbox_share >= BUSY
            local why
            if bound then
              why = ("sandbox busy %.0f%% of the wall time"):format(t.sandbox_share * 100)
            elseif render and render > limit then
              why = ("the limit is unreachable: the sandbox needs %.3f s to render %d pages")
                :format(render, pages)
            end
            local a = speedup and speedup >= 6
            local b = vs_limit <= 1.3
            say("  targets (c8): >= 6x baseline: %s (%s); <= 1.3x the limit: %s (%s)",
                target(("listing ps%d c8 vs baseline"):format(ps), ratio(speedup), ">= 6x",
                       speedup and a, why),
                ratio(speedup),
                target(("listing ps%d c8 vs limit"):format(ps), ratio(vs_limit), "<= 1.3x", b, why),
                ratio(vs_limit))
            if render then
              say("  sandbox alone: %d pages x %.1f ms of server time (in-process) = %.3f s"
                  .. " on its one Lua thread%s",
                  pages, page_ms, render, render > limit and " -- more than the limit" or "")
            end
            if bound then
              say("  NOTE: the sandbox was the bottleneck here (its CPU time was %.0f%% of the wall time)",
                  t.sandbox_share * 100)
            end
          end
        end
      end
    end
    if not have_client then
      target(("listing ps%d c8 vs baseline"):format(ps), "not available yet", ">= 6x", nil, "no client yet")
      target(("listing ps%d c8 vs limit"):format(ps), "not available yet", "<= 1.3x", nil, "no client yet")
    end
  end
  stop_sandbox(sb)
end

local floor_result   -- reused by section 5

local function section_requests(have_client)
  say("")
  say("== 2. Per-request cost: %d signed GETs of one order, loopback, no latency ==", GETS)
  local sb, err = start_sandbox(LIST_SEED, 0)
  if not sb then
    say("  not available: %s", err)
    return
  end
  local one = signed_get(sb, "/PurchaseOrders/Page/1", "pageSize=1")
  local guid = one and one.Items and one.Items[1] and one.Items[1].Guid
  if not guid then
    say("  cannot read an order's Guid from the sandbox")
    stop_sandbox(sb)
    return
  end
  say("  order %s; sandbox --seed %d --latency-ms 0", guid, LIST_SEED)
  say("  %-34s %9s %10s %9s %12s %9s %9s %s", "", "rps", "CPU s", "CPU/req", "vs floor", "vs base",
      "CPU/floor", "sandbox CPU/wall")
  local rows = {}
  local function row(name, t)
    rows[name] = t
    if not t then return end
    local f, b = rows.floor, rows.baseline
    say("  %-34s %9s %10.3f %7.1f us %12s %9s %9s %5.0f%%", name, rate(t.rps), t.cpu_seconds,
        t.cpu_seconds / t.requests * 1e6, f and ratio(t.rps / f.rps) or "-",
        b and ratio(t.rps / b.rps) or "-", f and ratio(t.cpu_seconds / f.cpu_seconds) or "-",
        t.sandbox_cpu / t.seconds * 100)
  end
  local floor_ok, floor_err = available("floor")
  if floor_ok then
    local t, e = measure(sb, ("%s %s %s %s %s %d"):format(sh_quote(FLOOR), sh_quote(sb.url),
      sh_quote(API_ID), sh_quote(API_KEY), sh_quote("/PurchaseOrders/" .. guid), GETS))
    if not t then say("  floor failed: %s", e) end
    floor_result = t
    row("floor (C, libcurl, no decoding)", t)
    rows.floor = t
  else
    say("  floor: %s", floor_err)
  end
  local b, berr = measure(sb, ("%s %s get %s %s %s %s %d"):format(PYTHON, sh_quote(BASELINE),
    sh_quote(sb.url), sh_quote(API_ID), sh_quote(API_KEY), guid, GETS))
  if not b then say("  baseline failed: %s", berr) end
  rows.baseline = b
  row("baseline (python requests)", b)
  local function client_row(name, mode)
    if not have_client then
      say("  %-34s not available yet", name)
      target(name .. " vs floor", "not available yet", ">= 0.7x", nil, "no client yet")
      target(name .. " vs baseline", "not available yet", ">= 3x", nil, "no client yet")
      return
    end
    local t, e = measure(sb, ("%s %s %s %d"):format(CLIENT, mode, guid, GETS))
    if not t then
      say("  %-34s failed: %s", name, e)
      target(name .. " vs floor", "failed", ">= 0.7x", false, e)
      target(name .. " vs baseline", "failed", ">= 3x", false, e)
      return
    end
    row(name, t)
    local f = rows.floor
    local bound = f and f.sandbox_cpu / f.seconds >= BUSY and "the floor was sandbox-bound" or nil
    local vf = f and t.rps / f.rps
    local vb = b and t.rps / b.rps
    say("  %-34s targets: >= 0.7x floor: %s; >= 3x baseline: %s", "",
        target(name .. " vs floor", ratio(vf), ">= 0.7x", vf and vf >= 0.7, bound),
        target(name .. " vs baseline", ratio(vb), ">= 3x", vb and vb >= 3, nil))
  end
  client_row("client core c:request (Lua loop)", "request")
  client_row("client purchase_orders:get", "get")
  local f = rows.floor
  if f then
    local share = f.sandbox_cpu / f.seconds
    if share >= BUSY then
      say("  NOTE: the sandbox was the bottleneck of the floor run (its CPU %.0f%% of the wall time);",
          share * 100)
      say("        rates near the floor's then measure the sandbox; CPU per request measures the client.")
    end
  end
  stop_sandbox(sb)
end

local function section_memory(have_client)
  say("")
  say("== 3. Memory: peak RSS (VmHWM) of a script iterating orders without keeping them ==")
  if not have_client then
    say("  not available yet (no client)")
    target("memory 100k/10k", "not available yet", "<= 1.2", nil, "no client yet")
    return
  end
  local sb, err = start_sandbox(MEM_SEED, 0)
  if not sb then
    say("  not available: %s", err)
    target("memory 100k/10k", "-", "<= 1.2", nil, err)
    return
  end
  say("  sandbox --seed %d --latency-ms 0 started in %.1f s; page size 1000, concurrency 8", MEM_SEED,
      sb.start_seconds)
  local peaks = {}
  for _, n in ipairs(MEM_COUNTS) do
    local t, e = measure(sb, ("%s list 1000 8 %d"):format(CLIENT, n))
    if not t then
      say("  %d orders: failed: %s", n, e)
    else
      peaks[n] = t.vmhwm_kb
      say("  %7d orders: peak RSS %7.1f MB in %s (%d listing pass%s)", t.orders, t.vmhwm_kb / 1024,
          secs(t.seconds), t.passes, t.passes == 1 and "" or "es")
    end
  end
  local a, b = peaks[MEM_COUNTS[1]], peaks[MEM_COUNTS[2]]
  local r = a and b and b / a
  say("  ratio 100,000 / 10,000: %s  target <= 1.2: %s", r and ("%.3f"):format(r) or "-",
      target("memory 100k/10k", r and ("%.3f"):format(r) or "failed", "<= 1.2", r and r <= 1.2 or false, nil))
  stop_sandbox(sb)
end

local function section_decoding(have_client)
  say("")
  say("== 4. Decoding: page of 1,000 full orders, response bytes -> order objects ==")
  if not inproc then
    say("  not available: the in-process measurement failed")
    target("decoding vs cjson", "-", ">= 0.6x", nil, "no in-process figures")
    return
  end
  say("  page of %d orders, %d bytes (rendered by the sandbox in-process)", inproc.decode_items,
      inproc.page1000_bytes)
  say("  cjson.decode alone:         %9.0f orders/s", inproc.cjson_orders_per_s)
  if inproc.layer_orders_per_s then
    local r = inproc.layer_orders_per_s / inproc.cjson_orders_per_s
    say("  Lua layer (%s): %9.0f orders/s  %s of cjson  target >= 0.6x: %s", inproc.layer_path,
        inproc.layer_orders_per_s, ratio(r), target("decoding vs cjson", ratio(r), ">= 0.6x", r >= 0.6))
  else
    say("  Lua layer: not available yet (%s)", inproc.layer_missing or (have_client and "?" or "no client"))
    target("decoding vs cjson", "not available yet", ">= 0.6x", nil, inproc.layer_missing)
  end
end

local function section_sandbox()
  say("")
  say("== 5. Sandbox speed (issue 3) ==")
  if inproc then
    say("  app:handle in-process (median): page of 1,000 full orders %.1f ms, page of 200 %.1f ms,",
        inproc.page1000_ms, inproc.page200_ms)
    say("  GET of one order %.3f ms (%.0f/s for the handler alone); app built for --seed %d in %.1f s",
        inproc.get_ms, 1000 / inproc.get_ms, inproc.seed, inproc.build_seconds)
    say("  server time for a page of 1,000 full orders: %.1f ms  target < 50 ms: %s", inproc.page1000_ms,
        target("sandbox page of 1,000", ("%.1f ms"):format(inproc.page1000_ms), "< 50 ms",
               inproc.page1000_ms < 50))
  else
    target("sandbox page of 1,000", "-", "< 50 ms", nil, "in-process measurement failed")
  end
  if floor_result then
    local share = floor_result.sandbox_cpu / floor_result.seconds
    say("  signed GETs/s of one order, one keep-alive client (the floor, section 2): %s"
        .. "  target >= 5000/s: %s",
        rate(floor_result.rps), target("sandbox GETs/s", rate(floor_result.rps), ">= 5000/s",
                                       floor_result.rps >= 5000))
    say("  sandbox CPU during that run: %.0f%% of the wall time (it %s the bottleneck)", share * 100,
        share >= BUSY and "was" or "was not")
  else
    target("sandbox GETs/s", "-", ">= 5000/s", nil, "the floor did not run")
  end
end

local function closing(cores)
  say("")
  say("== Targets (%s cores) ==", cores)
  local met, missed, na = 0, 0, 0
  for _, s in ipairs(summary) do
    say("  %-46s %-20s %-10s %s%s", s.name, s.value, s.target, s.verdict,
        s.why and ("  (" .. s.why .. ")") or "")
    if s.verdict == "MET" then met = met + 1 elseif s.verdict == "MISSED" then missed = missed + 1
    else na = na + 1 end
  end
  say("  %d met, %d missed, %d not measured", met, missed, na)
  for _, n in ipairs(notes) do say("  %s", n) end
end

local function main()
  local t0 = lib.now()
  local cores = header()
  local have_sandbox, why_sb = available("sandbox")
  local have_client, why_client = available("client")
  if not have_sandbox then say("sandbox: not available yet (%s)", why_sb) end
  if not have_client then say("client: not available yet (%s)", why_client) end
  if have_sandbox or pcall(require, "unleashed.sandbox") then
    local t, e = run_json(INPROC .. " " .. LIST_SEED)
    if t then inproc = t else say("in-process sandbox measurement failed: %s", e) end
  end
  if have_sandbox then
    section_listing(have_client)
    section_requests(have_client)
    section_memory(have_client)
  else
    say("sections 1-3 need bin/unleashed-sandbox: not available yet")
    for _, n in ipairs{ "listing ps200 c8 vs baseline", "listing ps200 c8 vs limit",
                        "listing ps1000 c8 vs baseline", "listing ps1000 c8 vs limit",
                        "memory 100k/10k" } do
      target(n, "not available yet", "", nil, why_sb)
    end
  end
  section_decoding(have_client)
  section_sandbox()
  closing(cores)
  say("")
  say("total time %.0f s", lib.now() - t0)
end

local ok, err = xpcall(main, debug.traceback)
for _, sb in ipairs(sandboxes) do stop_sandbox(sb) end
if not ok then
  io.stderr:write("bench/run.lua: ", tostring(err), "\n")
  os.exit(1)
end
