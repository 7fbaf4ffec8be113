-- TLS: the sandbox serves HTTPS with a certificate made here by the openssl
-- command (a private CA nobody's trust store holds). The client refuses it
-- by default with kind "tls" and does not retry; it accepts it when given
-- the certificate as ca_file; and no option turns verification off.
local sandbox = require "support.sandbox"
local unleashed = require "unleashed"
local core = require "unleashed.core"
local cjson = require "cjson"

local quote = sandbox.quote

local function sh(cmd)
  -- openssl runs without the sanitizer runtimes a --san run preloads
  local ok = os.execute("env -u LD_PRELOAD " .. cmd .. " >/dev/null 2>&1")
  assert(ok, "command failed: " .. cmd)
end

-- A self-signed certificate for IP 127.0.0.1 (and a second, unrelated one).
local function make_cert(dir, name)
  local cert, key = dir .. "/" .. name .. ".pem", dir .. "/" .. name .. "-key.pem"
  sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
    .. "-subj /CN=unleashed-sandbox -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s")
    :format(quote(key), quote(cert)))
  return cert, key
end

-- The admin endpoints over HTTPS, read with the curl command (not the
-- code under test).
local function admin(sb, cert, method, path)
  local p = assert(io.popen(("env -u LD_PRELOAD curl -s --cacert %s -X %s %s"):format(quote(cert), method,
    quote(sb.base_url .. path))))
  local body = p:read("a")
  p:close()
  return assert(cjson.decode(body))
end

describe("TLS", function()
  local dir, cert, key, other, sb

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    sh("mkdir -p " .. quote(dir))
    cert, key = make_cert(dir, "sandbox")
    other = make_cert(dir, "other")
    sb = sandbox.start{ seed = 3, admin = true, tls_cert = cert, tls_key = key }
  end)

  teardown(function()
    if sb then sb:stop() end
    if dir then os.execute("rm -rf " .. quote(dir)) end
  end)

  local function client(extra)
    local o = { api_id = sb.api_id, api_key = sb.api_key, base_url = sb.base_url,
                max_retries = 3, retry_base = 0.001, retry_cap = 0.01 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return unleashed.new(o)
  end

  it("serves HTTPS on 127.0.0.1", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", sb.base_url)
  end)

  it("refuses an unknown certificate by default with kind tls, without retrying", function()
    local events = {}
    local c = client{ on_request = function(ev) events[#events + 1] = ev end }
    admin(sb, cert, "POST", "/_sandbox/reset")
    local ok, e = pcall(c.request, c, "GET", "/Taxes")
    c:close()
    assert.is_false(ok)
    assert.is_true(unleashed.Error.is(e))
    assert.equal("tls", e.kind)
    assert.equal(1, e.attempts)
    assert.is_nil(e.status)
    assert.matches("certificate", tostring(e))
    assert.equal(1, #events)
    assert.equal("tls", events[1].kind)
    -- the request itself never reached the API
    assert.equal(0, admin(sb, cert, "GET", "/_sandbox/stats").Total)
  end)

  it("refuses the certificate when ca_file holds a different one", function()
    local c = client{ ca_file = other }
    local ok, e = pcall(c.request, c, "GET", "/Taxes")
    c:close()
    assert.is_false(ok)
    assert.equal("tls", e.kind)
    assert.equal(1, e.attempts)
  end)

  it("accepts the certificate given as ca_file, and works through the library", function()
    local c = client{ ca_file = cert }
    admin(sb, cert, "POST", "/_sandbox/reset")
    local doc = c:request("GET", "/Taxes")
    assert.is_table(doc.Items)
    local po = c.purchase_orders:create{ Supplier = { SupplierCode = "ACME" }, OrderStatus = "Parked",
      PurchaseOrderLines = { { Product = { ProductCode = "BOLT M8 #10" }, OrderQuantity = 1,
                               UnitPrice = 2 } } }
    assert.equal(po.Guid, c.purchase_orders:get(po.Guid).Guid)
    c:close()
    assert.is_true(admin(sb, cert, "GET", "/_sandbox/stats").Total >= 3)
  end)

  it("checks the host name even with the right ca_file", function()
    local c = client{ ca_file = cert, base_url = sb.base_url:gsub("127%.0%.0%.1", "localhost") }
    local ok, e = pcall(c.request, c, "GET", "/Taxes")
    c:close()
    assert.is_false(ok)
    -- localhost may resolve to ::1 first, where nothing listens: then 127.0.0.1
    assert.equal("tls", e.kind, tostring(e))
  end)

  it("has no option that turns verification off", function()
    local base = { api_id = "id", api_key = "key", base_url = sb.base_url }
    for _, name in ipairs{ "verify", "ssl_verify", "ssl_verifypeer", "ssl_verifyhost", "insecure",
                           "verify_peer", "tls_verify", "no_verify", "VERIFY" } do
      for _, value in ipairs{ false, 0, "no" } do
        local o = {}
        for k, v in pairs(base) do o[k] = v end
        o[name] = value
        local ok, e = pcall(unleashed.new, o)
        assert.is_false(ok, name .. " was accepted")
        assert.equal("validation", e.kind)
        assert.equal(name, e.details[1].field)
        assert.matches("is not an option", tostring(e))
        -- the core refuses them too, rather than ignoring them
        local cok, cerr = pcall(core.new_client, o)
        assert.is_false(cok, "core.new_client accepted " .. name)
        assert.truthy(tostring(cerr):find(name .. ": unknown option", 1, true), tostring(cerr))
      end
    end
  end)

  it("refuses a ca_file that is not a file, rather than falling back", function()
    local ok, e = pcall(unleashed.new, { api_id = "id", api_key = "key", base_url = sb.base_url,
                                         ca_file = dir .. "/missing.pem" })
    assert.is_false(ok)
    assert.equal("validation", e.kind)
    assert.equal("ca_file", e.details[1].field)
    for _, v in ipairs{ false, "", 1 } do
      local vok, ve = pcall(unleashed.new, { api_id = "id", api_key = "key", ca_file = v })
      assert.is_false(vok)
      assert.equal("ca_file", ve.details[1].field)
    end
  end)

  it("refuses a ca_file that holds no certificate with kind tls", function()
    local junk = dir .. "/junk.pem"
    local f = assert(io.open(junk, "w"))
    f:write("not a certificate\n")
    f:close()
    local c = client{ ca_file = junk }
    local ok, e = pcall(c.request, c, "GET", "/Taxes")
    c:close()
    assert.is_false(ok)
    assert.equal("tls", e.kind, tostring(e))
    assert.equal(1, e.attempts)
  end)
end)
