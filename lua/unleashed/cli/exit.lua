-- Exit codes: the one table the `unleashed` command and the embedding host
-- (examples/host, which calls M.for_error through Lua) both use, so that a
-- failure exits with the same code whichever program ran the script.
local M = {}

M.CODES = {
  ok = 0,
  failure = 1,       -- anything else: a script's own error, a server fault, a conflict
  usage = 2,         -- unknown command or flag, a missing or malformed argument
  auth = 3,          -- no credentials, a refused profile file, the API refused them
  validation = 4,    -- the library or the API refused the input
  not_found = 5,     -- no such purchase order
  network = 6,       -- network, timeout or TLS failure
  rate_limited = 7,  -- rate limited, or the monthly quota is spent
  interrupted = 130, -- Ctrl-C (SIGINT), as shells report 128 + 2
}

-- Error kinds (unleashed.Error.kind, and the command's own "usage") to codes;
-- any other kind is 1.
M.KINDS = {
  usage = 2, auth = 3, validation = 4, not_found = 5, network = 6, timeout = 6, tls = 6,
  rate_limited = 7, quota = 7, interrupted = 130,
}

-- The table every --help ends with (the specs check it against M.CODES).
M.HELP = table.concat({
  "exit codes:",
  "    0  ok",
  "    1  any other failure (a script's own error, a server fault, a conflict)",
  "    2  usage: unknown command or flag, a missing or malformed argument",
  "    3  auth: no credentials, a refused profile file, or the API refused them (403)",
  "    4  validation: the API or the library refused the input (400)",
  "    5  not found: no such purchase order",
  "    6  network, timeout or TLS failure",
  "    7  rate limited, or the monthly API call quota is spent",
  "  130  interrupted (Ctrl-C)",
}, "\n")

-- Whether an error value is Lua's answer to SIGINT: the standalone
-- interpreter raises "interrupted!" at the next Lua instruction after Ctrl-C.
function M.is_interrupt(err)
  return type(err) == "string" and err:find("interrupted!$") ~= nil
end

-- The exit code for an error value: its kind's code, 130 for an interrupt,
-- otherwise 1.
function M.for_error(err)
  if M.is_interrupt(err) then return M.CODES.interrupted end
  if type(err) == "table" and type(err.kind) == "string" then return M.KINDS[err.kind] or 1 end
  return 1
end

return M
