-- client.purchase_orders:changes{ since = CHECKPOINT, ...filters }: the
-- purchase orders created or changed since a checkpoint, and the next
-- checkpoint once they have all come through.
--
--   local feed = client.purchase_orders:changes{ since = saved }
--   for po, kind in feed do ... end          -- kind: "changed" or "deleted"
--   saved = feed.checkpoint
--
-- The rule (docs/reference.md, "The change feed", says why it is safe):
--  * One listing asks for modifiedSince = the checkpoint's bound, every
--    status (Deleted included, so no order leaves the result while it is
--    listed), and page 1 first. A listing of one page is one snapshot and
--    complete by itself: with nothing changed, or a hundred changes at page
--    size 1000, the round is one call.
--  * A listing of several pages reads slices of a live result at different
--    moments: an order that enters it (or moves in it) shifts the slices and
--    can make an unchanged order fall between two of them. So after the last
--    page two more calls check it: one lists what changed since the round
--    began (less the overlap), then one counts the result. The round is
--    complete when every order counted was read in the round. Otherwise the
--    listing is read again (up to three listings in a round) and, if the
--    round never comes out complete, the checkpoint stays where it was.
--  * A complete round moves the bound to the server's time when its first
--    page 1 was answered (its Date header, or the newest LastModifiedOn on
--    that page when the Date is missing or behind) less the overlap: writes
--    still in progress, and the difference between the clock of the Date
--    header and the clock that stamps LastModifiedOn, must fit in the overlap.
--  * The checkpoint keeps the Guid and LastModifiedOn of every order read at
--    or after its bound: the next round reads them again and drops them.
--    Within a round an order is delivered once per LastModifiedOn.
local core = require "unleashed.core"
local Error = require "unleashed.error"
local filters = require "unleashed.filters"
local dates = require "unleashed.dates"
local validate = require "unleashed.validate"
local page_count = require("unleashed.client").page_count

local M = {}

-- Every status the API documents; with all of them (Deleted included) an
-- order never leaves a modifiedSince listing while it is read.
M.ALL_STATUSES = "Parked,Placed,Unapproved,Costed,Receipted,Complete,Deleted"
M.DEFAULT_OVERLAP = 60            -- seconds
M.PREFIX = "unleashed-changes/1"
M.MAX_LISTINGS = 3                -- listings in one round before giving up on a complete one
M.SEEN_LIMIT = 5000               -- Guids an incomplete round keeps in its checkpoint

local PATH = "/PurchaseOrders"
local NOT_FILTERS = {
  modifiedSince = "is set by the checkpoint: use since",
  orderNumber = "overrides every other filter, so it cannot follow changes",
  pageSize = "is a listing option: use opts.page_size",
}

local Feed = {}
Feed.__index = Feed
Feed.__name = "unleashed.ChangeFeed"

-- ---- checkpoints ------------------------------------------------------------------

local function iso_ms(ms)
  return (core.iso_date(ms):gsub("Z$", ""))
end

local function parse_ms(s)
  if type(s) ~= "string" then return nil end
  return core.parse_date(s)
end

-- The filters part of a checkpoint: the wire text of the filters the feed was
-- made with (percent-encoded, so it holds no space or comma).
local function filters_key(query)
  local _, wire = core.encode_query(query)
  return wire
end

-- "unleashed-changes/1 since=2026-11-22T09:58:00.000 filters=supplierCode=ACME seen=GUID@MS,..."
local function format_checkpoint(since_ms, key, seen)
  local list = {}
  for g, ms in pairs(seen) do list[#list + 1] = g .. "@" .. ms end
  table.sort(list)
  return ("%s since=%s filters=%s seen=%s"):format(M.PREFIX, since_ms and iso_ms(since_ms) or "-", key,
    table.concat(list, ","))
end

-- Returns since_ms (nil: from the beginning), the filters key and the seen
-- map, or nil and a message.
local function parse_checkpoint(s)
  local since, key, seen_text = s:match("^" .. M.PREFIX:gsub("%p", "%%%0")
    .. " since=(%S+) filters=(%S*) seen=(%S*)$")
  if not since then return nil, "is not a checkpoint of this library (" .. M.PREFIX .. " ...)" end
  local since_ms
  if since ~= "-" then
    since_ms = parse_ms(since)
    if not since_ms then return nil, "has a malformed since= part" end
  end
  local seen = {}
  for g, ms in seen_text:gmatch("([^,@]+)@(%d+)") do seen[g] = math.tointeger(tonumber(ms)) end
  return since_ms, key, seen
end

-- ---- order identity ------------------------------------------------------------------

-- A Guid folded to a 64-bit integer: the round's record of what it read
-- costs a table slot per order, not a string kept alive. The 36 bytes of
-- its text are read as five words and mixed. Two Guids of one account
-- folding alike (odds of some 3e-10 in a round of 100,000 orders, 3e-8 of a
-- million) would make one order stand for the other: the round would not
-- come out complete, and one of the two might wait for a later round.
local unpack = string.unpack
local function key_of(g)
  if #g == 36 then
    local a, b, c, d, e = unpack("<i8i8i8i8i4", g)
    return a ~ (b * 0x9E3779B97F4A7C15) ~ (c * 0xC2B2AE3D27D4EB4F) ~ (d * 0x165667B19E3779F9)
             ~ (e * 0x27D4EB2F165667C5)
  end
  return g
end

-- An order's LastModifiedOn in ms (CreatedOn when the API left it null), or 0.
local function modified_ms(po)
  return parse_ms(po.LastModifiedOn) or parse_ms(po.CreatedOn) or 0
end
M.modified_ms = modified_ms

-- ---- construction ------------------------------------------------------------------

local OPTS = { overlap = true, page_size = true, concurrency = true, progress = true, timeout = true,
               retries = true }

local function check_opts(opts, client, problems)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    problems[#problems + 1] = { field = "opts", message = "must be a table" }
    return {}
  end
  for k in pairs(opts) do
    if not OPTS[k] then
      problems[#problems + 1] = { field = "opts." .. tostring(k), message =
        "is not an option of changes (valid: concurrency, overlap, page_size, progress, retries, timeout)" }
    end
  end
  local out = { overlap = M.DEFAULT_OVERLAP, page_size = client.page_size, concurrency = client.concurrency,
                progress = opts.progress, timeout = opts.timeout, retries = opts.retries }
  local o = opts.overlap
  if o ~= nil then
    if type(o) ~= "number" or o ~= o or o < 0 or o > 86400 then
      problems[#problems + 1] = { field = "opts.overlap",
                                  message = "must be a number of seconds from 0 to 86400" }
    else
      out.overlap = o
    end
  end
  local ps = opts.page_size
  if ps ~= nil then
    if not math.tointeger(ps) or ps < 1 or ps > 1000 then
      problems[#problems + 1] = { field = "opts.page_size", message = "must be an integer from 1 to 1000" }
    else
      out.page_size = math.tointeger(ps)
    end
  end
  local c = opts.concurrency
  if c ~= nil then
    if not math.tointeger(c) or c < 1 or c > 64 then
      problems[#problems + 1] = { field = "opts.concurrency", message = "must be an integer from 1 to 64" }
    else
      out.concurrency = math.tointeger(c)
    end
  end
  if opts.progress ~= nil and type(opts.progress) ~= "function" then
    problems[#problems + 1] = { field = "opts.progress", message = "must be a function" }
  end
  validate.call_options({ timeout = opts.timeout, retries = opts.retries }, problems, "opts.")
  return out
end

--- new(resource, wrap, spec, opts) -> feed. resource is client.purchase_orders;
-- wrap(item) gives a listed item its order methods.
function M.new(resource, wrap, spec, opts)
  local problems = {}
  if spec ~= nil and type(spec) ~= "table" then
    Error.raise_validation("invalid change feed", { { field = "filters", message = "must be a table" } },
      "GET", PATH)
  end
  local f, since = {}, nil
  for k, v in pairs(spec or {}) do
    if k == "since" then
      since = v
    elseif NOT_FILTERS[k] then
      problems[#problems + 1] = { field = k, message = NOT_FILTERS[k] }
    else
      f[k] = v
    end
  end
  local query, fproblems = filters.purchase_orders(f)
  for _, p in ipairs(fproblems) do problems[#problems + 1] = p end
  local client = resource.client
  local o = check_opts(opts, client, problems)

  local key = filters_key(query)
  local since_ms, seen = nil, {}
  if type(since) == "string" and since:sub(1, #M.PREFIX) == M.PREFIX then
    local s, ckey, cseen = parse_checkpoint(since)
    if s == nil and ckey then
      problems[#problems + 1] = { field = "since", message = ckey }
    elseif ckey ~= key then
      problems[#problems + 1] = { field = "since", message = ("was made with other filters (%s), not these "
        .. "(%s): use the same filters, or start again from a date"):format(ckey == "" and "none" or ckey,
        key == "" and "none" or key) }
    else
      since_ms, seen = s, cseen
    end
  elseif since ~= nil then
    local text, rule = dates.coerce(since, false)
    if not text then
      problems[#problems + 1] = { field = "since", message = "must be a checkpoint (" .. M.PREFIX
        .. " ...), or " .. rule:gsub("^must be ", "") }
    else
      since_ms = parse_ms(text)
    end
  end
  table.sort(problems, function(a, b) return a.field < b.field end)
  if #problems > 0 then Error.raise_validation("invalid change feed", problems, "GET", PATH) end

  local self = setmetatable({
    client = client, resource = resource, wrap = wrap,
    query = query, key = key, since_ms = since_ms, seen = seen, opts = o,
    overlap_ms = math.floor(o.overlap * 1000 + 0.5),
    calls = 0, listings = 0, verified = nil, state = "new",
    delivered = 0, failed = {},
  }, Feed)
  self.checkpoint = format_checkpoint(since_ms, key, seen)
  return self
end

-- ---- one listing ------------------------------------------------------------------------

local function query_for(self, page_size)
  local q = {}
  for k, v in pairs(self.query) do q[k] = v end
  q.orderStatus = q.orderStatus or M.ALL_STATUSES
  if self.since_ms then q.modifiedSince = iso_ms(self.since_ms) end
  q.pageSize = page_size
  return q
end

-- GET /PurchaseOrders?...: the decoded page and the result. A 2xx whose body
-- is not a page (cut or spoiled on the way) is asked for again, as listings do.
local function first_page(self, q)
  local client = self.client
  local budget = self.opts.retries or client.max_retries
  local err
  for _ = 0, budget do
    local ok, doc, res = pcall(client.request, client, "GET", PATH,
      { query = q, timeout = self.opts.timeout, retries = self.opts.retries })
    if ok then
      self.calls = self.calls + 1
      if type(doc) == "table" and type(doc.Items) == "table" and type(doc.Pagination) == "table" then
        return doc, res
      end
      err = Error.protocol("the response is not a page (Pagination and Items expected)", "GET", PATH, res)
    elseif Error.is(doc, "protocol") then
      err = doc
    else
      error(doc, 0)
    end
  end
  error(err, 0)
end

-- The server's time from the Date header (an HTTP date, whole seconds), or nil.
local function date_ms(res)
  local d = res and res.headers and res.headers.date
  if type(d) ~= "string" then return nil end
  local s = core.parse_retry_after(d, 0)
  if not s or s <= 0 or not d:find("%a") then return nil end   -- an HTTP date, not delta-seconds
  return math.tointeger(math.floor(s)) * 1000
end

-- Considers one listed order: counts it for the round's check, and delivers
-- it unless this round or the checkpoint already has it at this
-- LastModifiedOn (or later).
local function consider(self, item, round)
  local g = item.Guid
  local lmo = modified_ms(item)
  if type(g) ~= "string" then
    error(Error.protocol("a listed purchase order has no Guid", "GET", PATH), 0)
  end
  local k = key_of(g)
  local read = round.read
  local before = read[k]
  if before == nil then round.distinct = round.distinct + 1 end
  if lmo >= round.keep_from then round.recent[g] = lmo end
  if round.kept_count <= M.SEEN_LIMIT and not round.kept[g] then
    round.kept[g] = lmo
    round.kept_count = round.kept_count + 1
  end
  if before and before >= lmo then return end
  read[k] = lmo
  if self.seen[g] == lmo then return end
  if self.wrap and getmetatable(item) == nil then item = self.wrap(item) end
  self.delivered = self.delivered + 1
  coroutine.yield("order", item, item.OrderStatus == "Deleted" and "deleted" or "changed")
end

-- A page boundary: pages() hands out its batch; `done` (nil for the check's
-- own reads) goes to the progress function.
local function page_done(self, done, total)
  if done and self.opts.progress then self.opts.progress(done, total) end
  coroutine.yield("page", done, total)
end

-- Reads every page of one listing (q with its pageSize): page 1 through one
-- call, which gives the server's time, pages 2.. through the library's
-- listing, which begins at page 1 again (orders it hands out a second time
-- are dropped). Reports pages when `report` is set. Returns the number of
-- pages page 1 announced and the server's time of page 1 (nil when unknown).
local function read_all(self, round, q, report)
  local o = self.opts
  local doc, res = first_page(self, q)
  local pages = page_count(doc, q.pageSize, res, "GET", PATH)
  local t_server = date_ms(res)
  local newest
  for _, item in ipairs(doc.Items) do
    local ms = modified_ms(item)
    if not newest or ms > newest then newest = ms end
  end
  if newest and (not t_server or newest > t_server) then t_server = newest end
  if t_server and not round.t_server then
    round.t_server = t_server
    round.keep_from = t_server - self.overlap_ms
  end
  for _, item in ipairs(doc.Items) do consider(self, item, round) end
  local total = pages > 1 and pages + 1 or 1
  page_done(self, report and 1, total)
  if pages <= 1 then return pages, t_server end
  local lq = {}
  for k, v in pairs(q) do lq[k] = v end
  local size = lq.pageSize
  lq.pageSize = nil
  local n, listed_pages = 0, 0
  for po in self.resource:each(lq, { page_size = size, concurrency = o.concurrency, timeout = o.timeout,
                                     retries = o.retries,
                                     progress = function(done, t) listed_pages, total = done, t + 1 end }) do
    n = n + 1
    consider(self, po, round)
    if n % size == 0 then page_done(self, report and math.min(1 + n // size, total), total) end
  end
  self.calls = self.calls + listed_pages
  if n % size ~= 0 then page_done(self, report and total, total) end
  return pages, t_server
end

-- One listing of the round's query: true when it was one page (a snapshot,
-- complete by itself).
local function listing(self, round)
  self.listings = self.listings + 1
  local pages = read_all(self, round, query_for(self, self.opts.page_size), true)
  return pages <= 1
end

-- The check after a listing of several pages. First what changed since the
-- round began (less the overlap), at the largest page size so that it is
-- one snapshot in the usual case: orders that entered the result while it
-- was read, delivered like the others. Then the count of the result. Every
-- order counted must have been read in this round. An order that enters
-- between those two calls makes the check fail, never pass wrongly; the
-- check is tried again (CHECKS times) before the listing is read again.
M.CHECKS = 3
local function check(self, round)
  if not round.t_server then return false end
  for _ = 1, M.CHECKS do
    local q = query_for(self, 1000)
    q.modifiedSince = iso_ms(round.t_server - self.overlap_ms)
    read_all(self, round, q, false)
    local cdoc = first_page(self, query_for(self, 1))
    if math.tointeger(cdoc.Pagination.NumberOfItems) == round.distinct then return true end
  end
  return false
end

-- The round, run in a coroutine: yields ("order", po, kind) and ("page", done, total).
local function run(self)
  local round = { read = {}, distinct = 0, recent = {}, kept = {}, kept_count = 0,
                  keep_from = math.maxinteger }
  local complete = false
  for _ = 1, M.MAX_LISTINGS do
    complete = listing(self, round) or check(self, round)
    if complete then break end
  end
  self.verified = complete
  self.round = round
  self.t_server = round.t_server
end

-- Works out the next checkpoint from the round (and the orders handed back).
local function settle(self)
  local round = self.round
  local since = self.since_ms
  local seen = {}
  if self.verified and self.t_server then
    local next_since = self.t_server - self.overlap_ms
    if not since or next_since > since then since = next_since end
  end
  for _, ms in pairs(self.failed) do
    if not since or ms < since then since = ms end
  end
  local function keep(g, ms)
    if not self.failed[g] and (not since or ms >= since) then seen[g] = ms end
  end
  if self.verified and since and since >= round.keep_from then
    for g, ms in pairs(round.recent) do keep(g, ms) end
  elseif round.kept_count <= M.SEEN_LIMIT then
    for g, ms in pairs(self.seen) do keep(g, ms) end
    for g, ms in pairs(round.kept) do keep(g, ms) end
  else
    -- Too many to keep: at least the recent ones; the others may come again.
    for g, ms in pairs(round.recent) do keep(g, ms) end
  end
  self.checkpoint = format_checkpoint(since, self.key, seen)
end

-- ---- iteration ---------------------------------------------------------------------------

-- Resumes the round to its next event: "order", po, kind / "page", done, total / nil at the end.
local function step(self)
  if self.state == "done" or self.state == "closed" then return nil end
  if self.state == "failed" then error("unleashed: this change feed failed; start a new one", 2) end
  if not self.co then
    self.co = coroutine.create(run)
    self.state = "running"
  end
  local ok, what, a, b = coroutine.resume(self.co, self)
  if not ok then
    self.state = "failed"
    error(what, 0)
  end
  if coroutine.status(self.co) == "dead" then
    self.state = "done"
    self.co = nil
    settle(self)
    return nil
  end
  return what, a, b
end

--- for po, kind in feed do ... end: each order created or changed since the
-- checkpoint, once per LastModifiedOn; kind is "deleted" for a Deleted order.
function Feed:__call()
  while true do
    local what, a, b = step(self)
    if what == nil then return nil end
    if what == "order" then return a, b end
  end
end

--- feed:pages(): for orders in feed:pages() do ... end: the new orders of each
-- page of the listing, as an array (possibly empty), in page order.
function Feed:pages()
  return function()
    local batch = {}
    while true do
      local what, a = step(self)
      if what == nil then
        if #batch > 0 then return batch end
        return nil
      end
      if what == "order" then batch[#batch + 1] = a
      else return batch end
    end
  end
end

--- feed:redeliver(po): po was not handled; the checkpoint keeps it for the next round.
function Feed:redeliver(po)
  if type(po) ~= "table" or type(po.Guid) ~= "string" then
    Error.raise_validation("invalid order", { { field = "po", message = "must be an order from this feed" } })
  end
  self.failed[po.Guid] = modified_ms(po)
  if self.state == "done" then settle(self) end
end

--- feed:close(): ends the round early (the checkpoint stays the one it began with).
function Feed:close()
  if self.co then
    local co = self.co
    self.co = nil
    coroutine.close(co)
  end
  if self.state ~= "done" then self.state = "closed" end
end
Feed.__close = Feed.close

function Feed:__tostring()
  return ("unleashed.ChangeFeed(%s, %s)"):format(self.since_ms and iso_ms(self.since_ms) or "from the start",
    self.state)
end

return M
