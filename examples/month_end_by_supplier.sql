-- Month-end purchase totals by supplier and currency, from the mirror that
-- `unleashed po sync --db FILE.sqlite` keeps. Plain SQL over the orders
-- table: run it with
--
--   unleashed po report --db orders.sqlite examples/month_end_by_supplier.sql
--   sqlite3 -header -column orders.sqlite < examples/month_end_by_supplier.sql
--
-- The month is the last one before the current month that has orders (put
-- a literal such as '2026-10' in its place for another). Orders count by
-- their OrderDate; Parked (drafts) and Deleted orders are left out. Totals
-- are in the order's currency, and in the account's base currency (bc_).
WITH month AS (
  SELECT max(substr(order_date, 1, 7)) AS ym
  FROM orders
  WHERE order_date < strftime('%Y-%m-01', 'now')
)
SELECT month.ym                       AS month,
       o.supplier_code                AS supplier,
       o.currency                     AS currency,
       count(*)                       AS orders,
       sum(o.status IN ('Receipted', 'Costed', 'Complete')) AS received,
       round(sum(o.sub_total), 2)     AS sub_total,
       round(sum(o.tax_total), 2)     AS tax_total,
       round(sum(o.total), 2)         AS total,
       round(sum(o.bc_total), 2)      AS base_total
FROM orders AS o, month
WHERE substr(o.order_date, 1, 7) = month.ym
  AND o.status NOT IN ('Parked', 'Deleted')
GROUP BY o.supplier_code, o.currency
ORDER BY base_total DESC, supplier, currency;
