-- The progress bar a long listing draws on stderr, only when stderr is a
-- terminal: one line, redrawn in place, as wide as the terminal (read again
-- at most once a second, so a resized window gets a bar of its new width),
-- wiped when the listing ends.
local M = {}

-- stderr is a terminal: lua-term when installed, otherwise test(1), whose
-- file descriptor 2 is ours.
function M.stderr_is_tty()
  local ok, term = pcall(require, "term")
  if ok and type(term) == "table" and term.isatty then
    return term.isatty(io.stderr) and true or false
  end
  return os.execute("test -t 2") == true
end

-- The terminal's columns: stty(1) on our stderr, else $COLUMNS, else 80.
function M.terminal_width(getenv)
  local p = io.popen("stty size <&2 2>/dev/null")
  if p then
    local out = p:read("a") or ""
    p:close()
    local cols = tonumber(out:match("^%s*%d+%s+(%d+)"))
    if cols and cols > 0 then return cols end
  end
  local cols = tonumber((getenv or os.getenv)("COLUMNS") or "")
  if cols and cols > 0 then return math.floor(cols) end
  return 80
end

-- The bar for `done` of `total` pages in `cols` columns. It stays one column
-- short of the edge: writing the last column makes some terminals wrap.
function M.line(done, total, cols)
  local label = (" %d/%d pages"):format(done, total)
  local room = cols - 1 - #label - 2
  if room < 4 then return label:sub(2, math.max(1, cols)) end
  local filled = math.floor(room * done / total + 0.5)
  return "[" .. ("#"):rep(filled) .. ("."):rep(room - filled) .. "]" .. label
end

-- A bar writing to `out`. opts.width() gives the terminal's columns (default
-- terminal_width), opts.now() the time in seconds (default os.time).
function M.new(out, opts)
  opts = opts or {}
  local width_of = opts.width or M.terminal_width
  local now = opts.now or os.time
  local p = { shown = false }
  local cols, checked
  function p.update(done, total)
    if not total or total < 2 then return end
    local t = now()
    if not cols or t ~= checked then
      cols, checked = width_of(), t
    end
    -- \r back to the start, the bar, then erase what a longer line left.
    out:write("\r", M.line(done, total, cols), "\27[K")
    out:flush()
    p.shown = true
  end
  function p.finish()
    if p.shown then
      out:write("\r\27[K")
      out:flush()
      p.shown = false
    end
  end
  return p
end

return M
