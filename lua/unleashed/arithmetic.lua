-- The server's line and order arithmetic, on exact decimals:
--   LineTotal = round2(OrderQuantity x UnitPrice x (1 - DiscountRate))
--     (the quantity in the line's unit, the line's own DiscountRate; the
--     order's DiscountRate is not applied to lines)
--   LineTax   = round2(LineTotal x the line's tax rate)
--   SubTotal  = sum of LineTotal, TaxTotal = sum of LineTax, Total = both.
-- OrderQuantity and UnitPrice are first rounded to their (4dp), as the
-- server rounds request values. Rounding is half away from zero.
local D = require "unleashed.decimal"

local M = {}

function M.line_total(quantity, unit_price, discount_rate)
  local q = D.round(D.from_number(quantity), 4)
  local p = D.round(D.from_number(unit_price), 4)
  local v = D.mul(q, p)
  if discount_rate and discount_rate ~= 0 then
    v = D.mul(v, D.sub(D.parse("1"), D.from_number(discount_rate)))
  end
  return D.tonumber(D.round(v, 2))
end

function M.line_tax(line_total, tax_rate)
  return D.tonumber(D.round(D.mul(D.round(D.from_number(line_total), 2), D.from_number(tax_rate or 0)), 2))
end

-- Sums of the lines' LineTotal and LineTax: SubTotal, TaxTotal, Total.
function M.totals(lines)
  local sub, tax = D.parse("0"), D.parse("0")
  for _, line in ipairs(lines) do
    sub = D.add(sub, D.round(D.from_number(line.LineTotal or 0), 2))
    tax = D.add(tax, D.round(D.from_number(line.LineTax or 0), 2))
  end
  return D.tonumber(sub), D.tonumber(tax), D.tonumber(D.add(sub, tax))
end

-- Two amounts equal to the cent (values read back from JSON carry float noise).
function M.same_cents(a, b)
  return D.cmp(D.round(D.from_number(a), 2), D.round(D.from_number(b), 2)) == 0
end

return M
