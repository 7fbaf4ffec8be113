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

-- Two tax rates equal to the 6 places the API writes them with.
function M.same_rate(a, b)
  return D.cmp(D.round(D.from_number(a), 6), D.round(D.from_number(b), 6)) == 0
end

-- ---- quantities and units ------------------------------------------------------
-- A line read back has OrderQuantity in the product's base unit and
-- PurchaseUnitOrderQuantity in its UnitOfMeasure (the purchase unit); the
-- ratio of the two is the unit's size in base units (24 for a CASE24 of EA).

function M.round4(q) return (D.round_number(q, 4)) end

-- Two quantities equal to the 4 places the server keeps.
function M.same_quantity(a, b)
  return D.cmp(D.round(D.from_number(a), 4), D.round(D.from_number(b), 4)) == 0
end

-- 48, 2.5: a quantity as a person writes it.
function M.quantity_text(q)
  local s = D.tostring(D.round(D.from_number(q), 4))
  if s:find("%.") then s = s:gsub("0+$", ""):gsub("%.$", "") end
  return s
end

-- Base units per unit of the line, from a line read back; 1 when it does
-- not show both quantities.
function M.unit_factor(line)
  local base, own = line.OrderQuantity, line.PurchaseUnitOrderQuantity
  if type(base) ~= "number" or type(own) ~= "number" or own <= 0 or base <= 0 then return 1 end
  return (D.round_number(base / own, 6))
end

-- A quantity in the line's unit as base units (4 places).
function M.to_base_unit(q, factor)
  return D.tonumber(D.round(D.mul(D.round(D.from_number(q), 4), D.from_number(factor)), 4))
end

-- A quantity in base units as one in the line's unit, or nil when it is not
-- a quantity of that unit to 4 places (50 EA on a CASE24 line).
function M.to_line_unit(base, factor)
  if factor == 1 then return M.round4(base) end
  local q = M.round4(base / factor)
  local back = D.round(D.mul(D.from_number(q), D.from_number(factor)), 4)
  if D.cmp(back, D.round(D.from_number(base), 4)) ~= 0 then
    return nil
  end
  return q
end

return M
