-- `unleashed run SCRIPT.lua [ARGS...]`: a workflow script with `unleashed`,
-- a ready `client` and `arg`. An error the script does not catch is reported
-- where the script failed: a library error (raised without a position, as
-- error objects are) with the script's file and line, anything else with
-- Lua's traceback.
local connect = require "unleashed.cli.connect"
local exit = require "unleashed.cli.exit"
local flags = require "unleashed.cli.flags"

local M = {}

-- Library files: their frames are skipped when looking for the script's.
local function in_library(source)
  return source:find("[/\\]unleashed%.lua$") ~= nil or source:find("[/\\]unleashed[/\\][^/\\]+%.lua$") ~= nil
    or source:find("[/\\]unleashed[/\\]cli[/\\]") ~= nil
end

-- "FILE:LINE" of the innermost frame of the script (chunk name "@"..script),
-- else of the innermost Lua frame outside the library, else the script's
-- name alone (a `return f()` tail call leaves no frame of its caller). The
-- walk stops at the command's own frame (`stop`, the function that ran the
-- script).
function M.where(script, level, stop)
  local fallback
  level = level or 2
  while true do
    local info = debug.getinfo(level, "Slf")
    if not info or (stop and info.func == stop) then break end
    if info.currentline and info.currentline > 0 and info.source:sub(1, 1) == "@" then
      if info.source == "@" .. script then return info.short_src .. ":" .. info.currentline end
      if not fallback and not in_library(info.source) then
        fallback = info.short_src .. ":" .. info.currentline
      end
    end
    level = level + 1
  end
  return fallback or script
end

-- Prints an uncaught error: "unleashed: " and the message (an
-- unleashed.Error through its __tostring), with `where` before it.
function M.report(ctx, err, traceback, where)
  if exit.is_interrupt(err) then
    ctx.stderr:write("unleashed: interrupted\n")
    return
  end
  local msg
  if type(err) == "table" and err.kind then
    msg = tostring(err)
    if msg:match("^table: ") then msg = tostring(err.message) end
  elseif type(err) == "string" or type(err) == "number" then
    msg = tostring(err)
  else
    local mt = getmetatable(err)
    msg = (mt and mt.__tostring) and tostring(err) or ("(error object is a %s value)"):format(type(err))
  end
  -- the library's errors already name it ("unleashed: ...")
  msg = msg:gsub("^unleashed: ", "")
  ctx.stderr:write("unleashed: ", where and (where .. ": ") or "", msg, "\n")
  if traceback then ctx.stderr:write(traceback, "\n") end
end

function M.main(ctx, args)
  if args[1] == nil then flags.usage_error("missing SCRIPT", "run") end
  if args[1] == "--help" or args[1] == "-h" then return ctx.help("run") end
  local script = args[1]
  local unleashed = require "unleashed"
  local script_arg = { [0] = script }
  for i = 2, #args do script_arg[i - 1] = args[i] end
  local env = setmetatable({ unleashed = unleashed, arg = script_arg }, {
    __index = function(t, k)
      if k == "client" then
        local client = connect.client(ctx, {}, "run")
        rawset(t, "client", client)
        return client
      end
      return _G[k]
    end,
  })
  local chunk, lerr = loadfile(script, "t", env)
  if not chunk then
    local f = io.open(script, "r")
    if not f then flags.usage_error(("cannot open script %s"):format(script), "run") end
    f:close()
    ctx.stderr:write("unleashed: ", lerr, "\n")
    return 1
  end
  local traceback, where
  local results = table.pack(xpcall(chunk, function(e)
    if exit.is_interrupt(e) then return e end
    if type(e) == "table" and e.kind then
      where = M.where(script, 2, M.main)
    else
      -- the script's frames only: cut where the command called it
      traceback = debug.traceback(nil, 2):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
    end
    return e
  end, table.unpack(script_arg, 1, #script_arg)))
  for _, c in ipairs(ctx.clients or {}) do pcall(c.close, c) end
  if not results[1] then
    local err = results[2]
    M.report(ctx, err, traceback, where)
    return exit.for_error(err)
  end
  return 0
end

return M
