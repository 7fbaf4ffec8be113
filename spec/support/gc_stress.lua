-- Loaded by .ci/gc-stress through LUA_INIT_5_4 into every lua5.4 process of
-- a suite run (busted's, the sandboxes', the stubs', the commands'): sets
-- the collector to its most aggressive, so that an object C code still uses
-- after Lua stopped referencing it is freed at once, and the ASan build
-- reports the use.
--
-- lua.c starts the collector in generational mode before LUA_INIT runs;
-- incremental with pause 1 (stored as 1/4, i.e. 0: a new cycle starts as
-- soon as one ends), the largest step multiplier and a step every couple of
-- bytes allocated keeps it collecting all the time.
collectgarbage("incremental", 1, 1000, 1)
-- The switch keeps the generational threshold: one full cycle resets it
-- under the new pause, so that stepping starts with the next allocation.
collectgarbage("collect")

-- Proof that it bites: an unreferenced object is finalised by a few small
-- allocations, without an explicit collectgarbage().
local finalised = false
setmetatable({}, { __gc = function() finalised = true end })
for i = 1, 10 do
  if finalised then break end
  local _ = { i }
end

local log = os.getenv("UNLEASHED_GC_STRESS_LOG")
if log and log ~= "" then
  local f = io.open(log, "a")
  if f then
    local words = {}
    for i = 0, 3 do words[#words + 1] = arg and arg[i] or nil end
    f:write(finalised and "active " or "INACTIVE ", table.concat(words, " "), "\n")
    f:close()
  end
end
