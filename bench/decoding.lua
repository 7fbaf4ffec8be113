-- Decoding rates of one listing page's bytes, in a process of its own:
--   lua5.4 bench/decoding.lua FILE
-- FILE holds the page (bench/inproc.lua writes it). Prints one JSON line:
-- orders per second of cjson.decode alone, core.normalize alone, the old
-- path (normalize, then cjson), the core's decoder (unleashed.json.decode)
-- and the Lua layer (bytes to order objects), and the last two's ratios to
-- cjson (json_vs_cjson, layer_vs_cjson). Times are CPU time of this process
-- (os.clock).
--
-- Its own process: the one that rendered the page built the sandbox's whole
-- heap (several hundred MB, freed but kept by malloc, scattered), which a
-- client never has; every allocation measured there paid for it, the more
-- so the faster the decoder. Here every candidate starts from the same
-- small heap, and the collector is in the same state for each (a full
-- collection and one untimed run before each measurement).
local lib = require "benchlib"
local cjson = require "cjson"
local core = require "unleashed.core"

local clock = os.clock
local path = assert(arg[1], "FILE")
local f = assert(io.open(path, "rb"))
local page = f:read("a")
f:close()

-- Rounds of about 0.6 s per candidate (a dozen pages, so the collector's
-- cycles average out), the candidates interleaved so that drift falls on all
-- alike, in a fixed order that runs backwards every other round (so no
-- candidate always follows the same one). Each candidate's rate is the
-- median over the rounds; its ratio to cjson is the median of its ratios
-- to cjson within each round, which a drift over the run does not move.
local function rounds(fns, bytes, items, n)
  local names, rates = {}, {}
  for name in pairs(fns) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do rates[name] = {} end
  for r = 1, n do
    for k = 1, #names do
      local name = names[r % 2 == 1 and k or #names + 1 - k]
      local fn = fns[name]
      collectgarbage()
      fn(bytes)
      local runs, s = 0, clock()
      repeat
        fn(bytes)
        runs = runs + 1
      until clock() - s >= 0.6 and runs >= 3
      local list = rates[name]
      list[#list + 1] = runs * items / (clock() - s)
    end
  end
  local med, paired = {}, {}
  for name, list in pairs(rates) do
    med[name] = lib.median(list)
    local ratios = {}
    for r = 1, n do ratios[r] = list[r] / rates.cjson[r] end
    paired[name] = lib.median(ratios)
  end
  return med, paired
end

local items = #cjson.decode(page).Items
local out = { decode_items = items }
local fns = { cjson = cjson.decode, normalize = core.normalize,
              old = function(b) return cjson.decode(core.normalize(b)) end }
local decoder = require "bench_decode"
if decoder.available then
  fns.layer = decoder.decode_page
  fns.json = decoder.json_decode
  out.layer_path = decoder.path
else
  out.layer_missing = decoder.missing
end
local rates, paired = rounds(fns, page, items, 7)
out.cjson_orders_per_s = rates.cjson
out.normalize_orders_per_s = rates.normalize
out.old_orders_per_s = rates.old
out.layer_orders_per_s = rates.layer
out.json_orders_per_s = rates.json
out.json_vs_cjson = paired.json
out.layer_vs_cjson = paired.layer

lib.emit(out)
