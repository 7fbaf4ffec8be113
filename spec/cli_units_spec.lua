-- The command's parts on their own: amounts and quantities, display width,
-- spreadsheet-safe CSV fields, flag values, the progress bar's line, the
-- exit-code table and the JSON indenter.
local format = require "unleashed.cli.format"
local csv = require "unleashed.cli.csv"
local flags = require "unleashed.cli.flags"
local progress = require "unleashed.cli.progress"
local exit = require "unleashed.cli.exit"
local Error = require "unleashed.error"
local cjson = require "cjson"

describe("unleashed.cli parts", function()
  it("prints amounts at their places or more, never in exponent form", function()
    assert.equal("75653.70", format.amount(75653.7))
    assert.equal("9376.50", format.amount(9376.5))
    assert.equal("204.7847", format.amount(204.7847))
    assert.equal("5.00", format.amount(5))
    assert.equal("2173.60", format.amount("2173.600"))
    assert.equal("-3.456", format.amount(-3.456))
    assert.equal("0.00", format.amount(-0.0))
    assert.equal("0.00001", format.amount(1e-5))
    assert.equal("2.5000", format.amount(2.5, 4))
    assert.equal("100000000000000000000.00", format.amount(1e20))
  end)

  it("prints integral quantities as integers, others as they are", function()
    assert.equal("153", format.quantity(153.0))
    assert.equal("153", format.quantity(153))
    assert.equal("2.5", format.quantity(2.5))
    assert.equal("0.3333", format.quantity(0.3333))
    assert.equal("48", format.quantity("48.0000"))
  end)

  it("measures text by the columns a terminal gives it", function()
    assert.equal(6, format.width("MÜLLER"))
    assert.equal(6, format.width("MU\u{308}LLER"))   -- a combining diaeresis takes no column
    assert.equal(4, format.width("日本"))
    assert.equal("MÜLLER  |", format.pad("MÜLLER", 8) .. "|")
    assert.equal("   12.50", format.pad("12.50", 8, true))
  end)

  it("writes tables padded by width, numbers right-aligned, without trailing spaces", function()
    local out = {}
    local sink = { write = function(_, ...) for _, s in ipairs { ... } do out[#out + 1] = s end end }
    format.write_table(sink, { { "CODE", "code" }, { "TOTAL", "total", "money" }, { "NOTE", "note" } }, {
      { code = "MÜLLER", total = 5, note = "" },
      { code = "ACME", total = 1234.5, note = "line\nbreak" },
    })
    local text = table.concat(out)
    assert.equal("CODE      TOTAL  NOTE\nMÜLLER     5.00\nACME    1234.50  line break\n", text)
  end)

  it("neutralises text a spreadsheet would run, and leaves numbers and plain text", function()
    for _, case in ipairs {
      { "=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0" }, { '=HYPERLINK("x")', "\"'=HYPERLINK(\"\"x\"\")\"" },
      { "+1+1", "'+1+1" }, { "-2+3", "'-2+3" }, { "@SUM(A1)", "'@SUM(A1)" },
      { "\tx", "'\tx" }, { "\rx", "\"'\rx\"" },
      { "-12.50", "-12.50" }, { "+5", "+5" }, { "ACME", "ACME" }, { "a=b", "a=b" },
      { -12.5, "-12.5" }, { 3, "3" },
    } do
      assert.equal(case[2], csv.field(case[1]), tostring(case[1]))
    end
    assert.equal("=cmd|' /C calc'!A0", csv.field("=cmd|' /C calc'!A0", true))
    assert.equal("@x,y\r\n", csv.record({ "@x", "y" }, 2, true))
    assert.equal("'@x,y\r\n", csv.record({ "@x", "y" }, 2))
  end)

  it("checks flag values with one message per kind of mistake", function()
    local function usage(fn, ...)
      local ok, e = pcall(fn, ...)
      assert.is_false(ok)
      assert.equal("usage", e.kind)
      return e.message
    end
    assert.equal("Placed,Parked", flags.statuses({ "placed, PARKED", "Placed" }))
    assert.truthy(usage(flags.statuses, { "Placed,Lost" }):find('got "Lost"', 1, true))
    local a = usage(flags.date, "2026-02-30", "since", nil, true)
    local b = usage(flags.date, "2026/01/01", "since", nil, true)
    assert.equal(a:gsub('"[^"]*"$', ""), b:gsub('"[^"]*"$', ""))
    assert.equal("2026-02-28", flags.date("2026-02-28", "since"))
    assert.equal("2024-02-29T10:00:00", flags.date("2024-02-29T10:00:00", "since", nil, true))
    assert.same({ concurrency = 8, max_retries = 0, timeout = 0.5 },
      flags.client_options { concurrency = "8", retries = "0", timeout = ".5" })
    assert.truthy(usage(flags.client_options, { timeout = "0" }):find("--timeout", 1, true))
    local opts, pos = flags.parse({ "-h", "--status", "a", "--status=b", "x", "--", "--y" },
      { status = "list" }, "t")
    assert.is_true(opts.help)
    assert.same({ "a", "b" }, opts.status)
    assert.same({ "x", "--y" }, pos)
  end)

  it("draws a progress line that fits the terminal", function()
    for _, cols in ipairs { 20, 40, 80, 200 } do
      for _, done in ipairs { 1, 7, 120 } do
        local line = progress.line(done, 120, cols)
        assert.is_true(#line <= cols - 1, cols .. ": " .. line)
        assert.truthy(line:find(done .. "/120 pages", 1, true))
      end
    end
    assert.equal("1/2 pa", progress.line(1, 2, 7))   -- too narrow for a bar: the count, cut
    local writes = {}
    local sink = { write = function(_, ...) writes[#writes + 1] = table.concat { ... } end,
                   flush = function() end }
    local width, now = 40, 0
    local bar = progress.new(sink, { width = function() return width end, now = function() return now end })
    bar.update(1, 10)
    width = 60
    bar.update(2, 10)             -- the same second: the width is not read again
    now = 1
    bar.update(3, 10)             -- a second later: the new width
    bar.finish()
    assert.equal(39, #writes[1]:match("\r(.-)\27%[K"))
    assert.equal(39, #writes[2]:match("\r(.-)\27%[K"))
    assert.equal(59, #writes[3]:match("\r(.-)\27%[K"))
    assert.equal("\r\27[K", writes[4])
  end)

  it("gives the command and the host one exit code per kind", function()
    assert.equal(3, exit.for_error(Error.new("auth", "missing credentials")))
    assert.equal(4, exit.for_error(Error.new("validation", "x")))
    assert.equal(5, exit.for_error(Error.new("not_found", "x")))
    for _, k in ipairs { "network", "timeout", "tls" } do
      assert.equal(6, exit.for_error(Error.new(k, "x")))
    end
    for _, k in ipairs { "rate_limited", "quota" } do assert.equal(7, exit.for_error(Error.new(k, "x"))) end
    for _, k in ipairs { "server", "conflict", "protocol", "closed" } do
      assert.equal(1, exit.for_error(Error.new(k, "x")))
    end
    assert.equal(130, exit.for_error("bin/unleashed:1: interrupted!"))
    assert.equal(1, exit.for_error("boom"))
    -- the help's table and the codes agree
    for name, code in pairs(exit.CODES) do
      assert.truthy(exit.HELP:find("\n%s*" .. code .. "  "), name)
    end
  end)

  it("indents JSON without touching strings", function()
    local text = '{"a":[],"b":{"c":"x\\",{[y","d":[1,2]},"e":{}}'
    local pretty = format.pretty_json(text)
    assert.same(cjson.decode(text), cjson.decode(pretty))
    assert.equal('{\n  "a": [],\n  "b": {\n    "c": "x\\",{[y",\n    "d": [\n      1,\n      2\n    ]\n  },\n'
      .. '  "e": {}\n}', pretty)
  end)
end)
