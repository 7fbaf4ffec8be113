-- The client a command talks through: credentials from the profile file or
-- the environment, the options the common flags set, the --verbose log of
-- every attempt, and the warnings about the environment.
local profile = require "unleashed.cli.profile"
local flags = require "unleashed.cli.flags"

local M = {}

-- One line per attempt, from the library's on_request event, which holds no
-- header, key or signature: "unleashed: GET /PurchaseOrders/Page/2 -> 200 in
-- 12.3 ms (attempt 2, retrying in 0.41 s)".
function M.verbose_hook(out)
  return function(ev)
    local outcome = ev.status and tostring(ev.status) or (ev.kind or "no answer")
    local notes = {}
    if ev.attempt and ev.attempt > 1 then notes[#notes + 1] = "attempt " .. ev.attempt end
    if ev.status and ev.kind then notes[#notes + 1] = ev.kind end
    if ev.wait then notes[#notes + 1] = ("retrying in %.2f s"):format(ev.wait) end
    out:write(("unleashed: %s %s -> %s in %.1f ms%s\n"):format(ev.method, ev.path, outcome, ev.ms or 0,
      #notes > 0 and (" (" .. table.concat(notes, ", ") .. ")") or ""))
    out:flush()
  end
end

-- libcurl writes the TLS session keys to the file SSLKEYLOGFILE names, so
-- anyone who can read it can decrypt the traffic, API calls included.
function M.warn_environment(ctx)
  if ctx.warned then return end
  ctx.warned = true
  local keylog = ctx.getenv("SSLKEYLOGFILE")
  if keylog and keylog ~= "" then
    ctx.stderr:write(("unleashed: warning: SSLKEYLOGFILE is set (%s): libcurl writes this session's TLS "
      .. "secrets to it, so whoever reads that file can read the API traffic; unset it unless you are "
      .. "debugging TLS\n"):format(keylog))
  end
end

-- A client for the command: ctx.global holds the options given before the
-- command, opts those given after it (which win).
function M.client(ctx, opts, topic)
  opts = opts or {}
  local merged = {}
  for k, v in pairs(ctx.global or {}) do merged[k] = v end
  for k, v in pairs(opts) do merged[k] = v end
  local copts = flags.client_options(merged, topic)
  local creds = profile.resolve(merged.profile or ctx.profile, ctx.getenv)
  for k, v in pairs(creds) do copts[k] = v end
  if merged.verbose then copts.on_request = M.verbose_hook(ctx.stderr) end
  M.warn_environment(ctx)
  local unleashed = require "unleashed"
  local client = unleashed.new(copts)
  ctx.clients = ctx.clients or {}
  ctx.clients[#ctx.clients + 1] = client
  return client
end

return M
