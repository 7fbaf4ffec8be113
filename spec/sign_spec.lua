-- Signing: base64(HMAC-SHA256(key, message)), checked against the openssl
-- command line computing the same HMAC independently at test time.
local core = require "unleashed.core"
local openssl_hmac = require("support.openssl").hmac

describe("unleashed.core.sign", function()
  local key = "s3cr3t+key/with=base64looks=="
  local messages = {
    "",
    "supplierCode=ACME",
    "supplierCode=ACME&startDate=2012-12-31",
    "supplierCode=A CME Ltd",
    "orderNumber=PO#0001",
    "supplierCode=A+B",
    "supplierCode=Smith & Sons&x=1",
    "comment=a=b",
    "discount=100%",
    "email=buyer@example.com",
    "supplierCode=Müller Äpfel 株式会社",
    string.rep("pageSize=1000&", 200),
  }
  for _, msg in ipairs(messages) do
    it(("matches openssl for %q"):format(#msg > 60 and msg:sub(1, 60) .. "..." or msg), function()
      assert.are.equal(openssl_hmac(msg, key), core.sign(msg, key))
    end)
  end

  it("uses the key as text, not base64-decoded", function()
    assert.are.equal(openssl_hmac("a=1", "QUJD"), core.sign("a=1", "QUJD"))
    assert.are_not.equal(core.sign("a=1", "ABC"), core.sign("a=1", "QUJD"))
  end)

  it("is base64 of 32 bytes, not hex", function()
    local sig = core.sign("supplierCode=ACME", "k")
    assert.are.equal(44, #sig)
    assert.truthy(sig:match("^[A-Za-z0-9+/]+=$"))
  end)

  it("refuses non-string arguments", function()
    assert.has_error(function() core.sign({}, "k") end)
    assert.has_error(function() core.sign("a=1") end)
  end)
end)
