--- unleashed.sandbox.ticker: the sandbox's change ticker (--touch-rate N).
--
-- Changes N random purchase orders a second, the way people and other
-- systems change an account while a script reads it: a new comment, a line
-- comment, a line added or deleted, parked or placed, receipted, completed,
-- deleted. Each change is a signed request through the app, so it follows
-- the API's rules and stamps LastModifiedOn like any other.
--
-- The ticker has no thread of its own: before each request the server asks
-- it to catch up, and it makes the changes due since the last request (at
-- most MAX_BATCH at once). Every answer the sandbox gives therefore reflects
-- every change due before it.
local core = require "unleashed.core"
local cjson = require("cjson").new()

local M = {}

M.MAX_BATCH = 1000

local Ticker = {}
Ticker.__index = Ticker

-- splitmix64, seeded apart from the server's fault stream.
local function prng(seed)
  local state = seed ~ 0x2545F4914F6CDD1D
  return function()
    state = state + 0x9E3779B97F4A7C15
    local z = state
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    z = z ~ (z >> 31)
    return (z >> 11) * 2.0 ^ -53
  end
end

--- ticker.new(app, opts): opts.touch_rate (changes a second), opts.seed,
-- opts.api_id and opts.api_key (the account the changes are signed for),
-- opts.now (seconds on a monotonic clock).
function M.new(app, opts)
  return setmetatable({
    app = app, rate = opts.touch_rate or 0, random = prng(opts.seed or 0),
    id = opts.api_id, signature = core.sign("", opts.api_key),
    since = opts.now, due_done = 0, touched = 0, failed = 0,
  }, Ticker)
end

function Ticker:request(method, path, body)
  return self.app:handle{
    method = method, path = path, query = "",
    headers = { ["api-auth-id"] = self.id, ["api-auth-signature"] = self.signature,
                ["accept"] = "application/json", ["content-type"] = "application/json",
                ["client-type"] = "sandbox/ChangeTicker" },
    body = body and cjson.encode(body) or "",
  }
end

local function pick(random, list)
  return list[1 + math.floor(random() * #list)]
end

-- The changes an order in each status can take, by weight.
local ACTIONS = {
  Parked = { "comment", "comment", "comment", "line_comment", "line_comment", "add_line", "delete_line",
             "place", "place", "delete" },
  Placed = { "comment", "comment", "comment", "line_comment", "line_comment", "add_line", "delete_line",
             "park", "receipt", "receipt", "delete" },
  Receipted = { "comment", "complete" },
  Costed = { "comment", "complete" },
}

-- Changes one random order: true when the API took the change, false when
-- it refused it, nil when no order it drew could take one.
function Ticker:touch_one()
  local orders = self.app.orders
  if #orders == 0 then return nil end
  local random = self.random
  for _ = 1, 8 do       -- Complete and Deleted orders take no change: look again
    local o = orders[1 + math.floor(random() * #orders)]
    local actions = ACTIONS[o.OrderStatus]
    if actions then
      local base = "/PurchaseOrders/" .. o.Guid
      local resp = self:request("GET", base)
      if resp.status ~= 200 then return false end
      local po = cjson.decode(resp.body)
      local lines = po.PurchaseOrderLines or {}
      local action = pick(random, actions)
      if (action == "delete_line" and #lines < 2) or ((action == "line_comment" or action == "add_line")
          and #lines == 0) or (action == "place" and #lines == 0) then
        action = "comment"
      end
      local stamp = ("touched %d"):format(self.touched + 1)
      local header = { OrderStatus = po.OrderStatus, Supplier = { Guid = po.Supplier.Guid } }
      if action == "comment" then
        header.Comments = stamp
        resp = self:request("PUT", base, header)
      elseif action == "place" or action == "park" then
        header.OrderStatus = action == "place" and "Placed" or "Parked"
        resp = self:request("PUT", base, header)
      elseif action == "receipt" then
        resp = self:request("POST", base .. "/Receipt")
      elseif action == "complete" then
        resp = self:request("POST", base .. "/Complete")
      elseif action == "delete" then
        resp = self:request("DELETE", base)
      else
        local line = pick(random, lines)
        if action ~= "delete_line" then
          -- Lines whose figures read back as sent (quantity in the unit priced).
          local plain = {}
          for _, l in ipairs(lines) do
            local q, p, d = l.OrderQuantity, l.UnitPrice, l.DiscountRate or 0
            if type(q) == "number" and type(p) == "number" and type(l.LineTotal) == "number"
                and math.abs(math.floor(q * p * (1 - d) * 100 + 0.5) / 100 - l.LineTotal) < 0.005 then
              plain[#plain + 1] = l
            end
          end
          line = pick(random, plain)
        end
        if line == nil then
          header.Comments = stamp
          resp = self:request("PUT", base, header)
        elseif action == "delete_line" then
          resp = self:request("DELETE", base .. "/Lines/" .. line.Guid)
        else
          -- The line's own figures again: the arithmetic still holds.
          local body = { OrderQuantity = line.OrderQuantity, UnitPrice = line.UnitPrice,
                         DiscountRate = line.DiscountRate, LineTotal = line.LineTotal, LineTax = line.LineTax,
                         Comments = stamp }
          if action == "line_comment" then
            resp = self:request("PUT", base .. "/Lines/" .. line.Guid, body)
          else
            local top = 0
            for _, l in ipairs(lines) do if (l.LineNumber or 0) > top then top = l.LineNumber end end
            body.LineNumber = math.tointeger(top) + 1
            body.Product = { ProductCode = line.Product.ProductCode }
            resp = self:request("POST", base .. "/Lines", body)
          end
        end
      end
      return resp.status >= 200 and resp.status < 300
    end
  end
  return nil
end

--- ticker:catch_up(now): makes the changes due by `now` (monotonic seconds);
-- returns how many the API took.
function Ticker:catch_up(now)
  if self.rate <= 0 then
    self.since, self.due_done = now, 0
    return 0
  end
  local due = math.floor((now - self.since) * self.rate) - self.due_done
  if due <= 0 then return 0 end
  if due > M.MAX_BATCH then
    -- Far behind (a pause, a slow machine): the backlog is dropped, not replayed.
    self.due_done = self.due_done + due - M.MAX_BATCH
    due = M.MAX_BATCH
  end
  local ok = 0
  for _ = 1, due do
    self.due_done = self.due_done + 1
    local took = self:touch_one()
    if took then
      ok = ok + 1
      self.touched = self.touched + 1
    elseif took == false then
      self.failed = self.failed + 1
    end
  end
  return ok
end

--- ticker:set_rate(rate, now): a new rate from now on (0 stops the ticker).
function Ticker:set_rate(rate, now)
  self.rate, self.since, self.due_done = rate, now, 0
end

--- The admin endpoint /_sandbox/touch: GET gives {"Rate", "Touched", "Failed"};
-- POST with {"Rate": N} sets the rate (0 stops).
function Ticker:admin(req, now)
  if req.method == "POST" then
    local ok, t = pcall(cjson.decode, req.body or "")
    local rate = ok and type(t) == "table" and t.Rate
    if type(rate) ~= "number" or rate ~= rate or rate < 0 or rate > 10000 then
      return 400, { Description = "Send {\"Rate\": N} with N changes a second, 0 to 10000" }
    end
    self:catch_up(now)
    self:set_rate(rate, now)
  elseif req.method ~= "GET" then
    return 405, { Description = "Use GET or POST for /_sandbox/touch" }, { Allow = "GET, POST" }
  end
  return 200, { Rate = self.rate, Touched = self.touched, Failed = self.failed }
end

return M
