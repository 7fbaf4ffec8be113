-- The client a script holds: one company's credentials (kept inside the C
-- core, never in a Lua table), the request and paging calls every resource
-- shares, and the on_request hook.
local core = require "unleashed.core"
local Error = require "unleashed.error"
local json = require "unleashed.json"
local filters = require "unleashed.filters"
local validate = require "unleashed.validate"

local M = {}

local Client = {}
Client.__index = Client
Client.__name = "unleashed.Client"
M.Client = Client

local METHODS = { GET = true, POST = true, PUT = true, DELETE = true, HEAD = true, PATCH = true }
local REQUEST_OPTS = { query = true, body = true, timeout = true, connect_timeout = true, retries = true,
                       idempotent = true }

-- What the core client takes from the options (never on_request, concurrency, page_size).
local CORE_OPTIONS = { "api_id", "api_key", "base_url", "client_type", "user_agent", "timeout",
                       "connect_timeout", "max_retries", "retry_base", "retry_cap", "ca_file", "max_body",
                       "proxy" }

M.DEFAULTS = {
  base_url = "https://api.unleashedsoftware.com",
  client_type = "lua-unleashed/app",
  concurrency = 4,
  page_size = 1000,
}

-- Sleeps for a wait the Lua layer makes itself (a throttled POST the core
-- does not resend).
function M.sleep(seconds)
  if seconds ~= seconds or seconds <= 0 then return end
  core.sleep(math.min(seconds, 86400))
end

-- opts have been checked by unleashed.new.
function M.new(opts)
  local copts = {}
  for _, k in ipairs(CORE_OPTIONS) do copts[k] = opts[k] end
  copts.base_url = copts.base_url or M.DEFAULTS.base_url
  copts.client_type = copts.client_type or M.DEFAULTS.client_type
  local self = setmetatable({
    base_url = copts.base_url,
    client_type = copts.client_type,
    concurrency = opts.concurrency or M.DEFAULTS.concurrency,
    page_size = opts.page_size or M.DEFAULTS.page_size,
    max_retries = opts.max_retries or 3,
    on_request = opts.on_request,
    _default_purchase_tax = opts.default_purchase_tax,   -- step 4 of the tax hierarchy
    _retry_base = opts.retry_base or 0.5,   -- the core's defaults, for waits the Lua layer makes
    _retry_cap = opts.retry_cap or 30,
    _core = core.new_client(copts),
    _cache = {},    -- per client: reference data (tax rates) of this company only
  }, Client)
  self.purchase_orders = require("unleashed.purchase_orders").new(self)
  return self
end

--- tostring(client): "unleashed.Client(abc12345..., https://host)", never the key.
function Client:__tostring()
  return tostring(self._core)
end

--- client:close(): releases the connections (also __close; idempotent).
function Client:close()
  self._closed = true
  self._core:close()
end

-- A call on a closed client is the script's mistake, reported as an
-- unleashed.Error of kind "closed" naming the call (never the core's plain
-- "client is closed" with a position inside the library).
local function check_open(self, method, path)
  if self._closed then
    local msg = "the client is closed: make a new one (unleashed.new) to send requests"
    error(Error.new("closed", msg, { method = method, path = path, details = { { message = msg } } }), 0)
  end
end
M.check_open = check_open
Client.__close = Client.close

--- client:clear_cache(): forgets the reference data (taxes, products,
-- suppliers) looked up for the arithmetic, e.g. after a tax rate changed.
function Client:clear_cache()
  self._cache = {}
end

-- ---- the hook ---------------------------------------------------------------

-- One event per attempt: method, path, status, attempt, ms, kind (and wait).
-- Built from the core's record, which holds no header, key or signature.
function Client:_emit(method, path, res)
  local hook = self.on_request
  if not hook then return end
  local events = res.events
  if type(events) ~= "table" or #events == 0 then
    events = { { attempt = res.attempts or 1, status = res.status, ms = res.ms,
                 kind = res.error and res.error.kind } }
  end
  for _, ev in ipairs(events) do
    local status = ev.status
    if status == 0 then status = nil end
    hook{ method = method, path = path, status = status, attempt = ev.attempt, ms = ev.ms,
          kind = ev.kind, wait = ev.wait }
  end
end

-- ---- requests ---------------------------------------------------------------

-- Whether a path has a "." or ".." segment, with dots written as such or as
-- %2e; "\\", %2f and %5c separate segments too, as some servers read them
-- so. Such a path is squashed into another (by libcurl, or by the server),
-- so the request served would not be the one the hook and errors report.
-- The core refuses the same paths.
local function has_dot_segment(path)
  local p = path:gsub("%%2[eE]", "."):gsub("%%2[fF]", "/"):gsub("%%5[cC]", "/"):gsub("\\", "/")
  for seg in (p .. "/"):gmatch("([^/]*)/") do
    if seg == "." or seg == ".." then return true end
  end
  return false
end

local function check_request(method, path, opts)
  local problems = {}
  if type(method) ~= "string" or not METHODS[method:upper()] then
    problems[#problems + 1] = { field = "method", message = "must be GET, POST, PUT, DELETE, HEAD or PATCH" }
  end
  if type(path) ~= "string" or not path:find("^/") or path:find("[%s%c]") then
    problems[#problems + 1] = { field = "path", message = "must be a path starting with /, without spaces" }
  elseif path:find("[?#]") then
    problems[#problems + 1] = { field = "path",
      message = "must not carry a query: pass it as opts.query so that it is signed" }
  elseif #path > 2048 or not utf8.len(path) then
    -- libcurl fails a request line past 1 MB as out of memory, a retried
    -- "network" error: refused here with its reason instead.
    problems[#problems + 1] = { field = "path", message = "must be valid UTF-8 of at most 2048 bytes" }
  elseif has_dot_segment(path) then
    problems[#problems + 1] = { field = "path",
      message = "must not have . or .. segments (also written %2e): the path sent must be the one reported" }
  end
  if opts ~= nil and type(opts) ~= "table" then
    problems[#problems + 1] = { field = "opts", message = "must be a table" }
  elseif opts then
    for k in pairs(opts) do
      if not REQUEST_OPTS[k] then
        problems[#problems + 1] = { field = "opts." .. tostring(k),
          message = "is not a request option (valid: body, connect_timeout, idempotent, query, retries, "
            .. "timeout)" }
      end
    end
    if opts.query ~= nil then
      local _, qp = filters.generic(opts.query)
      for _, p in ipairs(qp) do
        problems[#problems + 1] = { field = "query." .. p.field, message = p.message }
      end
    end
    validate.call_options(opts, problems, "opts.")
    local body = opts.body
    if body ~= nil and type(body) ~= "string" and type(body) ~= "table" then
      problems[#problems + 1] = { field = "body",
                                  message = "must be a table (sent as JSON) or a JSON string" }
    elseif type(body) == "string" and not utf8.len(body) then
      problems[#problems + 1] = { field = "body", message = "must be valid UTF-8 (JSON text)" }
    elseif type(body) == "table" then
      -- Any endpoint's fields, named as the body spells them: bounds looser
      -- than the purchase orders' own.
      local n = #problems
      validate.plain(body, "", problems, 32, 65536)
      for i = n + 1, #problems do
        if problems[i].field == "" then problems[i].field = "body" end
      end
    end
  end
  return problems
end

-- Sends one request and returns the core's result (never raises for HTTP or
-- network outcomes). opts: query, body (table or string), timeout,
-- connect_timeout, retries, idempotent.
function Client:_send(method, path, opts)
  check_open(self, method, path)
  opts = opts or {}
  local copts = { query = opts.query, timeout = opts.timeout, connect_timeout = opts.connect_timeout,
                  retries = opts.retries, idempotent = opts.idempotent }
  if type(opts.body) == "table" then
    local text, problem = json.encode(opts.body)
    if not text then
      Error.raise_validation("cannot send the body as JSON",
        { { field = problem.field or "body", message = problem.message } }, method, path)
    end
    copts.body = text
  else
    copts.body = opts.body
  end
  local ok, res = pcall(self._core.request, self._core, method, path, copts)
  if not ok then
    -- The client was closed while the call read its options (a finaliser, a
    -- metamethod): the core refused it, and nothing was sent.
    check_open(self, method, path)
    error(res, 0)
  end
  self:_emit(method, path, res)
  return res
end

-- Raises the protocol error for a 2xx body the decoder refused.
local function undecodable(why, kind, method, path, res)
  why = tostring(why):sub(1, 120)
  if kind == "limit" then
    error(Error.protocol("the response is too large to decode: " .. why, method, path, res), 0)
  end
  error(Error.protocol("the response is not JSON (" .. why .. ")", method, path, res), 0)
end

-- Decodes a 2xx body; an empty body is nil. Returns value or raises protocol.
function M.decode_body(res, method, path)
  local body = res.body
  if body == nil or body:find("^%s*$") then return nil end
  local v, err, kind = json.decode(body)
  if v == nil then undecodable(err, kind, method, path, res) end
  return v
end

-- A page the core's pager parsed on its own thread (res.page): the same
-- document decode_body gives, but each item is built only when the listing
-- first reads it, so a page's orders are never all in memory at once. An
-- answer that is not a page is built whole, as decode_body would.
function M.page_body(res, method, path)
  local page = res.page
  if page == nil then return M.decode_body(res, method, path) end
  local why, kind = page:error()
  if why then undecodable(why, kind, method, path, res) end
  local n = page:count()
  if n == nil then return page:doc() end
  local items = setmetatable({}, {
    __index = function(t, i)
      if math.type(i) ~= "integer" or i < 1 or i > n then return nil end
      local item = page:item(i)
      rawset(t, i, item)
      return item
    end,
    __len = function() return n end,
    guids = function() return page:guids() end,
  })
  return { Pagination = page:pagination(), Items = items }
end

-- Sends and checks: returns the decoded body (or nil) and the result, or
-- raises an unleashed.Error. ctx is passed to the status mapping.
function Client:_call(method, path, opts, ctx)
  local res = self:_send(method, path, opts)
  local err = Error.from_response(res, method, path, ctx)
  if err then error(err, 0) end
  return M.decode_body(res, method, path), res
end

-- The same, returning nil and the error instead of raising.
function Client:_try(method, path, opts, ctx)
  local ok, v, res = pcall(self._call, self, method, path, opts, ctx)
  if ok then return true, v, res end
  if not Error.is(v) then error(v, 0) end
  return false, v
end

--- client:request(method, path, opts) -> decoded JSON (nil for an empty body), res
-- Any endpoint, signed. opts: query (table), body (table sent as JSON, or a
-- JSON string), timeout, connect_timeout, retries, idempotent. Raises
-- unleashed.Error for every failure; res is the core's result table.
function Client:request(method, path, opts)
  local problems = check_request(method, path, opts)
  if #problems > 0 then
    -- The error repeats the method and path only when they are fit to print.
    local function shown(v) return type(v) == "string" and #v <= 2048 and utf8.len(v) and v or nil end
    Error.raise_validation("invalid request", problems, shown(method), shown(path))
  end
  return self:_call(method:upper(), path, opts)
end

-- ---- paging -----------------------------------------------------------------

-- Checks a list answer: { Pagination = {...}, Items = {...} }.
local function check_page(doc, res, method, path)
  if type(doc) ~= "table" or type(doc.Items) ~= "table" or type(doc.Pagination) ~= "table" then
    error(Error.protocol("the response is not a page (Pagination and Items expected)", method, path, res), 0)
  end
  return doc
end
M.check_page = check_page

-- The most pages a listing may ask for (the pager's own limit): a
-- NumberOfPages outside 0 .. MAX_PAGES (or not an integer) is a protocol
-- error, not a number to trust.
local MAX_PAGES = 1000000000

-- How many pages a listing reads, and the page size it measures pages by,
-- from page 1: NumberOfPages, never more than NumberOfItems allows. Page 1
-- of several is full, so when it holds fewer items than PageSize says but
-- NumberOfItems says there are more, its count is the server's real page
-- size; when NumberOfItems does not say so, a short page 1 is the only
-- page. requested is the pageSize the listing asked for. Raises kind
-- protocol on figures that are not counts.
local function page_count(doc, requested, res, method, path)
  local p = doc.Pagination
  local function bad(field)
    error(Error.protocol(("the page's Pagination.%s is not a count (%s)"):format(field, tostring(p[field])),
      method, path, res), 0)
  end
  local pages = p.NumberOfPages
  if pages == nil then pages = 1 end
  pages = math.tointeger(pages)
  if not pages or pages < 0 or pages > MAX_PAGES then bad("NumberOfPages") end
  local size = math.tointeger(p.PageSize)
  if size == nil or size < 1 then size = requested end
  local items = p.NumberOfItems
  if items ~= nil then
    items = math.tointeger(items)
    if not items or items < 0 or items > MAX_PAGES * 1000 then bad("NumberOfItems") end
  end
  local on_first = #doc.Items
  if size and on_first < size then
    if items and items > on_first and on_first > 0 then
      size = on_first
    else
      pages = math.min(pages, 1)
    end
  end
  if items and size then
    local allowed = (items + size - 1) // size
    if pages > allowed then pages = allowed end
  end
  if pages < 1 then pages = 1 end
  return pages, size
end
M.page_count = page_count

-- Guids of orders on the pages around the one being read. An order that
-- moves between pages while the listing runs (it changed, and the server
-- sorts by a changing field) shows up again on a later page: it is not
-- handed out twice. (A server that ignores the page number is caught by the
-- PageNumber it answers, in the listing.) Bounded memory: a listing of
-- 100,000 orders keeps two pages of Guids.
-- The Guid of each item (false where it has none); a parsed page's are read
-- from the Page without building its items.
local function guid_list(items)
  local mt = getmetatable(items)
  if mt and mt.guids then return mt.guids() end
  local out = {}
  for i = 1, #items do
    local it = items[i]
    local g = type(it) == "table" and it.Guid
    out[i] = type(g) == "string" and g
  end
  return out
end

local function set_of(guids)
  local set = {}
  for _, g in ipairs(guids) do
    if g then set[g] = true end
  end
  return set
end

-- Returns items without those already handed out (the same table when
-- none); guids is guid_list(items), read once per page.
local function drop_repeats(items, guids, first, previous)
  local kept
  for i = 1, #items do
    local g = guids[i]
    if type(g) == "string" and (first[g] or previous[g]) then
      if not kept then kept = table.move(items, 1, i - 1, 1, {}) end
    elseif kept then
      kept[#kept + 1] = items[i]
    end
  end
  return kept or items
end

-- A page that holds items must be the page asked for: a server that answers
-- page 1 (or another) whatever page is asked would hand out the same orders
-- over and over.
local function check_page_number(doc, n, res, path)
  local got = math.tointeger(doc.Pagination.PageNumber)
  if got and got ~= n and #doc.Items > 0 then
    error(Error.protocol(("the server answered page %d when asked for page %d: it is not paging")
      :format(got, n), "GET", path, res), 0)
  end
  return doc
end

local function check_paging_opts(opts, default_page_size, default_concurrency)
  local problems = {}
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    return nil, { { field = "opts", message = "must be a table" } }
  end
  local valid = { concurrency = true, page_size = true, progress = true, timeout = true, retries = true }
  for k in pairs(opts) do
    if not valid[k] then
      problems[#problems + 1] = { field = "opts." .. tostring(k),
        message = "is not a listing option (valid: concurrency, page_size, progress, retries, timeout)" }
    end
  end
  local c = opts.concurrency
  if c ~= nil and (not math.tointeger(c) or c < 1 or c > 64) then
    problems[#problems + 1] = { field = "opts.concurrency", message = "must be an integer from 1 to 64" }
  end
  local ps = opts.page_size
  if ps ~= nil and (not math.tointeger(ps) or ps < 1 or ps > 1000) then
    problems[#problems + 1] = { field = "opts.page_size", message = "must be an integer from 1 to 1000" }
  end
  validate.call_options({ timeout = opts.timeout, retries = opts.retries }, problems, "opts.")
  if opts.progress ~= nil and type(opts.progress) ~= "function" then
    problems[#problems + 1] = { field = "opts.progress", message = "must be a function" }
  end
  return {
    concurrency = math.tointeger(c) or default_concurrency,
    page_size = math.tointeger(ps) or default_page_size,
    progress = opts.progress, timeout = opts.timeout, retries = opts.retries,
  }, problems
end
M.check_paging_opts = check_paging_opts

-- A page is a GET, safe to repeat: a 2xx whose body is not a page (cut or
-- spoiled on the way) is requested again, up to the retry budget, before the
-- listing fails with kind protocol. err is the first protocol error.
function Client:_refetch_page(path, ropts, err, budget)
  for _ = 1, budget do
    local ok, doc, res = self:_try("GET", path, ropts)
    if ok then ok, doc = pcall(check_page, doc, res, "GET", path) end
    if ok then return doc end
    if not Error.is(doc, "protocol") then error(doc, 0) end
    err = doc
  end
  error(err, 0)
end

-- The listing engine behind client:each and purchase_orders:each. Page 1 is
-- one request; pages 2..NumberOfPages come from the core's pager, several in
-- flight, handed back in page order. Only the current page and the pager's
-- window are held. Returns the generic-for values: iterator, nil, nil and a
-- to-be-closed value that cancels the pager (a `break` releases it at once).
-- The to-be-closed value has no __gc: a script that keeps only the iterator
-- drops it, and the listing must go on; the pager's own __gc releases the
-- transfers once the iterator is garbage too.
function Client:_iterate(resource_path, query, popts, wrap)
  query.pageSize = query.pageSize or popts.page_size
  local ropts = { query = query, timeout = popts.timeout, retries = popts.retries }
  local budget = popts.retries or self.max_retries
  local ok, doc, res = self:_try("GET", resource_path, ropts)
  if ok then ok, doc = pcall(check_page, doc, res, "GET", resource_path) end
  if not ok then
    if not Error.is(doc, "protocol") then error(doc, 0) end
    doc = self:_refetch_page(resource_path, ropts, doc, budget)
  end
  local total, size = page_count(doc, query.pageSize, res, "GET", resource_path)
  if popts.progress then popts.progress(1, total) end

  local first = total > 1 and set_of(guid_list(doc.Items)) or nil
  local state = { items = doc.Items, i = 0, done = 1, previous = first }
  local page_format = resource_path .. "/Page/%d"
  if total > 1 then
    state.pager = self._core:pager(page_format, {
      query = query, first = 2, last = total, concurrency = popts.concurrency,
      timeout = popts.timeout, retries = popts.retries, parse = true,
    })
  end
  -- A page parsed by the pager's thread is freed as soon as its last item
  -- has been handed out (or the listing ends): the collector does not see
  -- its memory, and would let several dead pages pile up.
  local function free_page()
    local page = state.page
    state.page = nil
    if page then page:free() end
  end
  local function close()
    local p = state.pager
    state.pager, state.items = nil, {}
    free_page()
    if p then p:close() end
  end
  local closer = setmetatable({}, { __close = close, __name = "unleashed.Listing" })

  local function iterate()
    while true do
      local i = state.i + 1
      local item = state.items[i]
      if item ~= nil then
        state.i = i
        state.items[i] = false   -- handed out: the listing holds no reference to it
        if wrap then return wrap(item) end
        return item
      end
      free_page()
      local p = state.pager
      if not p then return nil end
      local nok, n, pres = pcall(p.next, p)
      if not nok then
        close()
        check_open(self, "GET", page_format:format(state.done + 1))   -- closed meanwhile: kind closed
        error(n, 0)
      end
      if n == nil then
        close()
        return nil
      end
      local path = page_format:format(n)
      self:_emit("GET", path, pres)
      local err = Error.from_response(pres, "GET", path)
      if err then
        close()
        error(err, 0)
      end
      state.page = pres.page
      local pok, pdoc = pcall(M.page_body, pres, "GET", path)
      if pok then pok, pdoc = pcall(check_page, pdoc, pres, "GET", path) end
      if not pok and Error.is(pdoc, "protocol") then
        pok, pdoc = pcall(self._refetch_page, self, path, ropts, pdoc, budget)
      end
      if pok then pok, pdoc = pcall(check_page_number, pdoc, n, pres, path) end
      if not pok then
        close()
        error(pdoc, 0)
      end
      local guids = guid_list(pdoc.Items)
      state.items, state.i = drop_repeats(pdoc.Items, guids, first, state.previous), 0
      state.done = state.done + 1
      -- An empty or short page is the end, whatever page 1 announced: the
      -- pages still in flight are cancelled and no more are asked for.
      local count = #pdoc.Items
      local last = count == 0 or (size and count < size)
      if popts.progress then popts.progress(state.done, last and state.done or total) end
      if last then
        state.pager = nil
        p:close()
      elseif n < total then
        state.previous = set_of(guids)
      end
    end
  end
  return iterate, nil, nil, closer
end

local function resource_path(resource)
  if type(resource) ~= "string" or not resource:find("^/?[%w_%-]+[%w_%-/]*$") or resource:find("//") then
    Error.raise_validation("invalid resource",
      { { field = "resource", message = "must be a resource name such as \"Suppliers\"" } })
  end
  return "/" .. resource:gsub("^/", ""):gsub("/$", "")
end

--- client:each(resource, filters, opts): for item in ... do end over any
-- paged endpoint ("Suppliers", "Products", ...). opts as purchase_orders:each.
function Client:each(resource, query, opts)
  local path = resource_path(resource)
  local q, problems = filters.generic(query)
  local popts, oproblems = check_paging_opts(opts, self.page_size, self.concurrency)
  for _, p in ipairs(oproblems) do problems[#problems + 1] = p end
  if #problems > 0 then Error.raise_validation("invalid listing", problems, "GET", path) end
  if q.pageSize == nil then q.pageSize = popts.page_size end
  return self:_iterate(path, q, popts)
end

--- client:list(resource, filters, opts) -> array of every item.
function Client:list(resource, query, opts)
  local out = {}
  for item in self:each(resource, query, opts) do out[#out + 1] = item end
  return out
end

return M
