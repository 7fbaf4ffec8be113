-- The `unleashed` command: purchase orders from the shell, workflow scripts
-- with a ready client, and the local sandbox. main(arg) returns the exit code
-- so that bin/unleashed stays a one-liner and the specs can call it too.
--
-- Where things are:
--   cli/po.lua          the `po` verbs (list, get, create, update, ...)
--   cli/run.lua         `run SCRIPT.lua`, and how an uncaught error is shown
--   cli/flags.lua       flag parsing and the checks of flag values
--   cli/format.lua      amounts, quantities, aligned tables, display width, JSON
--   cli/csv.lua         CSV writing (spreadsheet-safe) and reading
--   cli/progress.lua    the progress bar on a terminal
--   cli/connect.lua     the client: credentials, --verbose, warnings
--   cli/profile.lua     the profile file
--   cli/order_file.lua  `po create`'s JSON and CSV input
--   cli/help.lua        the --help texts
--   cli/exit.lua        the exit codes (shared with examples/host)
local exit = require "unleashed.cli.exit"
local flags = require "unleashed.cli.flags"
local help = require "unleashed.cli.help"
local progress = require "unleashed.cli.progress"

local M = {}

M.EXIT = exit.CODES
M.KIND_EXIT = exit.KINDS
M.HELP = help
M.stderr_is_tty = progress.stderr_is_tty

-- ---- sandbox --------------------------------------------------------------------
-- The sandbox runs in this process rather than as a child: a signal sent to
-- `unleashed sandbox` (a service manager's SIGTERM, a script's kill) reaches the
-- server itself, and nothing is left running behind it.
local function sandbox(ctx, args)
  local server = require "unleashed.sandbox.server"
  if args[1] == "--help" or args[1] == "-h" then
    ctx.help("sandbox")
    ctx.stdout:write("\nThe sandbox's own flags:\n\n")
    ctx.stdout:write(server.usage)
    return 0
  end
  ctx.stdout:flush()
  return server.main(args, ctx.stdout, ctx.stderr)
end

local COMMANDS = {
  po = function(ctx, args) return require("unleashed.cli.po").main(ctx, args) end,
  run = function(ctx, args) return require("unleashed.cli.run").main(ctx, args) end,
  sandbox = sandbox,
}

-- `unleashed help [TOPIC]`: a known topic's help, else a usage error.
local function help_command(ctx, args)
  if #args == 0 then return ctx.help("main") end
  local words = {}
  for _, a in ipairs(args) do
    if a ~= "--help" and a ~= "-h" then words[#words + 1] = a end
  end
  local topic = table.concat(words, " ")
  if topic == "" then return ctx.help("help") end
  if not help[topic] then
    flags.usage_error(("no help on %q (commands: po, po list, po get, ..., run, sandbox)"):format(topic),
      "main")
  end
  if topic == "sandbox" then return sandbox(ctx, { "--help" }) end   -- with the sandbox's own flags
  return ctx.help(topic)
end

-- The options before the command: those every command takes, and --version.
local GLOBAL = { version = "flag" }

-- Runs the command line in args (a table like the standalone interpreter's
-- `arg`). ctx overrides stdout, stderr, stdin, getenv, the terminal check
-- and width (specs).
function M.main(args, ctx)
  ctx = ctx or {}
  ctx.stdout = ctx.stdout or io.stdout
  ctx.stderr = ctx.stderr or io.stderr
  ctx.stdin = ctx.stdin or io.stdin
  ctx.getenv = ctx.getenv or os.getenv
  ctx.stderr_is_tty = ctx.stderr_is_tty or progress.stderr_is_tty
  ctx.terminal_width = ctx.terminal_width or function() return progress.terminal_width(ctx.getenv) end
  ctx.arg0 = ctx.arg0 or (args and args[0])
  function ctx.help(topic, code)
    local out = (code or 0) == 0 and ctx.stdout or ctx.stderr
    out:write(help[topic] or help.main)
    return code or 0
  end
  args = table.move(args or {}, 1, #(args or {}), 1, {})

  local traceback
  local ok, result = xpcall(function()
    -- global options come before the command
    local before = {}
    while args[1] and (args[1]:sub(1, 1) == "-") do
      before[#before + 1] = table.remove(args, 1)
      -- a value that follows its flag
      local name = before[#before]:match("^%-%-([^=]+)$")
      if name and (flags.COMMON[name] == "value") and args[1] then
        before[#before + 1] = table.remove(args, 1)
      end
    end
    local opts, pos = flags.parse(before, GLOBAL, "main")
    if #pos > 0 then flags.usage_error(("unexpected argument %q"):format(pos[1]), "main") end
    if opts.help then return ctx.help("main") end
    if opts.version then
      local v = "0.1.0"
      local lok, core = pcall(require, "unleashed.core")
      if lok and type(core) == "table" and core.version then v = core.version end
      ctx.stdout:write("unleashed ", v, "\n")
      return 0
    end
    -- checked now, so that a bad value is a usage error whatever the command
    flags.client_options(opts, "main")
    ctx.global = opts
    local cmd = table.remove(args, 1)
    if cmd == nil then return ctx.help("main", 2) end
    if cmd == "help" then return help_command(ctx, args) end
    local fn = COMMANDS[cmd]
    if not fn then flags.usage_error(("unknown command %q"):format(cmd), "main") end
    return fn(ctx, args)
  end, function(e)
    if not (type(e) == "table" and e.kind) and not exit.is_interrupt(e) then
      traceback = debug.traceback(nil, 2)
    end
    return e
  end)
  for _, c in ipairs(ctx.clients or {}) do pcall(c.close, c) end
  if ok then
    ctx.stdout:flush()
    return result or 0
  end
  local err = result
  if type(err) == "table" and err.kind == "usage" and err.cli then
    ctx.stderr:write("unleashed: ", err.message, "\n")
    local topic = err.topic and err.topic ~= "main" and (" " .. err.topic) or ""
    ctx.stderr:write(("run 'unleashed%s --help' for usage\n"):format(topic))
    return exit.CODES.usage
  end
  require("unleashed.cli.run").report(ctx, err, traceback)
  return exit.for_error(err)
end

return M
