-- The command's --help texts, one per topic ("main", "po", "po list", ...).
local exit = require "unleashed.cli.exit"

local EXIT_HELP = exit.HELP

local COMMON_HELP = [=[
  --profile NAME     credentials from section [NAME] of the profile file
  --concurrency N    pages in flight while listing, 1 to 64 (default 4)
  --retries N        retries after a failed attempt, 0 to 100 (default 3)
  --timeout SECONDS  the longest one attempt may take (default 30)
  --verbose          one line on stderr per attempt: method, path, status, time
  -h, --help         this help]=]

local CREDENTIALS_HELP = [=[
credentials (first that applies):
  --profile NAME (or UNLEASHED_PROFILE)  section [NAME] of the profile file
  UNLEASHED_API_ID, UNLEASHED_API_KEY    from the environment
  [default]                               section of the profile file
  UNLEASHED_BASE_URL, UNLEASHED_CLIENT_TYPE and UNLEASHED_DEFAULT_PURCHASE_TAX
  fill what a profile leaves out.
  The profile file is $XDG_CONFIG_HOME/unleashed/credentials (by default
  ~/.config/unleashed/credentials): one [section] per company with api_id,
  api_key, base_url, client_type, default_purchase_tax (a tax code, or a
  rate such as 0.15: the company's default purchase tax). It is refused
  unless only its owner can read and write it (chmod 600).]=]

local REF_HELP = [=[
An order is named by its GUID or its order number (PO-00000016, in any case).]=]

local H = {}

H.main = [=[
usage: unleashed [OPTIONS] COMMAND [ARGS...]

Purchase orders in an Unleashed account, from the shell.

commands:
  po list       list purchase orders as a table, CSV or JSON
  po get        show one purchase order and its lines
  po create     create purchase orders from a JSON or CSV file
  po update     change an order's status, dates, references or comments
  po place      place a Parked order
  po add-line   add a line to an order
  po costs      list an order's costs (freight, duty, ...)
  po receipt    receipt a purchase order
  po complete   complete a purchase order
  po delete     delete a purchase order (before its receipt)
  po sync       mirror the purchase orders into a SQLite file
  po watch      run a script for each changed purchase order
  po report     print an SQL report over the mirror
  run           run a workflow script with a ready client
  sandbox       start the local sandbox of the API
  help          this help, or a command's: unleashed help po list

options (before the command; the commands take them too):
]=] .. COMMON_HELP .. [=[

  --version          print the version

]=] .. CREDENTIALS_HELP .. [=[


A warning goes to stderr when SSLKEYLOGFILE is set: libcurl would write the
session's TLS secrets to that file.

]=] .. EXIT_HELP .. "\n"

H.po = [=[
usage: unleashed po SUBCOMMAND [ARGS...]

subcommands:
  list [--supplier CODE | --supplier-prefix PREFIX] [--status S[,S...]]...
       [--since DATE] [--warehouse CODE] [--format table|csv|json]
       [--page-size N] [--raw-csv]
  get ORDER [--format table|json]
  create FILE.json|FILE.csv|- [--status S] [--dry-run] [--format table|json]
  update ORDER [--status S] [--delivery-date DATE] [--supplier-ref TEXT]
         [--comments TEXT] [--warehouse CODE] [--tax-code CODE]
  place ORDER
  add-line ORDER --product CODE --quantity N --price P [--unit NAME]
           [--discount RATE] [--delivery-date DATE] [--comments TEXT]
  costs ORDER [--format table|csv|json] [--raw-csv]
  receipt ORDER
  complete ORDER
  delete ORDER
  sync --db FILE.sqlite [--since DATE] [--full] [--costs] [--page-size N]
  watch --every SECONDS --run SCRIPT.lua [--since DATE] [--checkpoint FILE]
  report --db FILE.sqlite QUERY.sql [--format table|csv|json] [--raw-csv]

]=] .. REF_HELP .. "\n`unleashed po SUBCOMMAND --help` for each.\n\n" .. EXIT_HELP .. "\n"

local CSV_SAFETY = [=[
CSV is RFC 4180 (CRLF, a header row). A text field that starts with =, +, -,
@, a tab or a carriage return gets a leading ' so that a spreadsheet shows
it as text instead of running it as a formula (amounts stay numbers);
--raw-csv writes every field exactly as the API holds it.]=]

H["po list"] = [=[
usage: unleashed po list [--supplier CODE | --supplier-prefix PREFIX]
                         [--status S[,S...]]... [--since DATE] [--warehouse CODE]
                         [--format table|csv|json] [--page-size N] [--raw-csv]

Lists purchase orders (not Deleted ones unless --status says Deleted),
several pages in flight, in page order.

  --supplier CODE    that supplier's orders only: the code exactly, in any
                     case (the API's filter is a prefix: the command asks it
                     for CODE and keeps the exact matches)
  --supplier-prefix PREFIX
                     every supplier whose code starts with PREFIX (the API's
                     supplierCode filter: ACME also finds ACME2)
  --status S         Parked, Placed, Costed, Receipted, Complete, Deleted,
                     Unapproved, in any case; several as Placed,Parked or by
                     repeating the flag (orderStatus)
  --since DATE       created or changed since DATE, YYYY-MM-DD or
                     YYYY-MM-DDTHH:MM:SS, UTC (modifiedSince)
  --warehouse CODE   warehouse code (warehouseCode)
  --format F         table (aligned columns, the default; the count goes to
                     stderr), csv (a header row, one order a row) or json
                     (an array of the API's objects)
  --page-size N      orders per call, 1 to 1000 (default 1000: the fewest
                     calls of the monthly quota)
  --raw-csv          CSV text fields exactly as the API holds them (below)
]=] .. COMMON_HELP .. [=[


Amounts show their currency (a CCY column) and at least 2 decimals.
]=] .. CSV_SAFETY .. [=[


A progress bar goes to stderr while pages arrive, only when stderr is a
terminal; it takes the terminal's width.

]=] .. EXIT_HELP .. "\n"

H["po get"] = [=[
usage: unleashed po get ORDER [--format table|json]

Shows one purchase order and its lines; JSON prints the API's object.
]=] .. REF_HELP .. [=[


Each line shows QTY (its PurchaseUnitOrderQuantity), UNIT (its
UnitOfMeasure's Name: the unit it was ordered in and UNIT PRICE is per) and
RECEIVED (its PurchaseUnitReceiptQuantity) in that unit, then BASE QTY (its
OrderQuantity, in the product's base unit).

  --format F         table (the default) or json
]=] .. COMMON_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H["po create"] = [=[
usage: unleashed po create FILE.json|FILE.csv|- [--status S] [--dry-run]
                           [--format table|json]

Creates purchase orders from a file (- reads stdin). Every order is checked
and priced first (line totals, taxes, totals); when any is refused, none is
sent.

JSON: one order, or an array of orders, with the fields of the API's POST
(Supplier, OrderStatus, PurchaseOrderLines, ...).

CSV: a header row and one line of an order per row. Columns: SupplierCode,
ProductCode, OrderQuantity (or Quantity), UnitPrice; optional: Order (rows
with the same Order form one order; by default one order per supplier),
OrderStatus, WarehouseCode, DeliveryDate, SupplierRef, Comments, TaxCode,
UnitOfMeasure, DiscountRate, LineComments.

  --status S         Parked, Placed or Complete for every order (default:
                     the file's OrderStatus, else Parked)
  --dry-run          print the requests that would be sent (method, path
                     and JSON body) and send none; the tax rates and
                     products it needs are still read
  --format F         table (one line per order, the default) or json
]=] .. COMMON_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H["po update"] = [=[
usage: unleashed po update ORDER [--status S] [--delivery-date DATE]
                           [--supplier-ref TEXT] [--comments TEXT]
                           [--warehouse CODE] [--tax-code CODE]

Changes an order (PUT): only the fields given. Prints the order's new state.
]=] .. REF_HELP .. [=[


  --status S         Parked, Placed, Costed or Complete
  --delivery-date DATE
                     YYYY-MM-DD
  --supplier-ref TEXT
                     the supplier's reference
  --comments TEXT    the order's comments
  --warehouse CODE   the warehouse the goods go to
  --tax-code CODE    the order's tax
]=] .. COMMON_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H["po place"] = [=[
usage: unleashed po place ORDER

Places the order (status Placed). Prints its new status.
]=] .. REF_HELP .. "\n\n" .. COMMON_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H["po add-line"] = [=[
usage: unleashed po add-line ORDER --product CODE --quantity N --price P
                             [--unit NAME] [--discount RATE]
                             [--delivery-date DATE] [--comments TEXT]

Adds a line; its total and tax are worked out first. Prints the new line.
]=] .. REF_HELP .. [=[


  --product CODE     the product code
  --quantity N       how many, above 0 (in --unit when given)
  --price P          the unit price, 0 or more
  --unit NAME        a purchasing unit of the product (UnitOfMeasure);
                     default the product's base unit
  --discount RATE    0 to 1 (0.1 is 10 percent)
  --delivery-date DATE
                     YYYY-MM-DD
  --comments TEXT    the line's comments
]=] .. COMMON_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H["po costs"] = [=[
usage: unleashed po costs ORDER [--format table|csv|json] [--raw-csv]

Lists the costs added to an order (freight, duty, ...): in their own
currency, and in the base currency (BC).
]=] .. REF_HELP .. [=[


  --format F         table (the default), csv or json
  --raw-csv          CSV text fields exactly as the API holds them (below)
]=] .. COMMON_HELP .. "\n\n" .. CSV_SAFETY .. "\n\n" .. EXIT_HELP .. "\n"

H["po receipt"] = [=[
usage: unleashed po receipt ORDER

Receipts the order: each line's receipt quantity (its order quantity when
none is set) goes into stock and the order becomes Receipted. Prints the
order's new status.
]=] .. REF_HELP .. "\n\n" .. COMMON_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H["po complete"] = [=[
usage: unleashed po complete ORDER

Completes the order: status Complete, no more costs or quantity changes.
Prints the order's new status.
]=] .. REF_HELP .. "\n\n" .. COMMON_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H["po delete"] = [=[
usage: unleashed po delete ORDER

Deletes the order (only before its receipt): it then lists only under
--status Deleted. Prints its new status.
]=] .. REF_HELP .. "\n\n" .. COMMON_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H.run = [=[
usage: unleashed run SCRIPT.lua [ARGS...]
       unleashed [OPTIONS] run SCRIPT.lua [ARGS...]

Runs a workflow script. Its environment holds `unleashed` (the library) and
`client` (a client made from the credentials on first use, closed when the
script ends), and `arg` holds its arguments (arg[0] is the script). ARGS go
to the script untouched, flags included: give OPTIONS before `run`.

An error the script does not catch ends it: a library error is printed with
the script's file and line (unleashed: FILE:LINE: KIND error ...), any other
with Lua's traceback; the exit code comes from the error's kind (below).
os.exit(N) exits with N; Ctrl-C exits 130.

]=] .. CREDENTIALS_HELP .. "\n\n" .. EXIT_HELP .. "\n"

H.sandbox = [=[
usage: unleashed sandbox [FLAGS...]

Starts the local sandbox of the API in this process, with the flags of the
unleashed-sandbox command, for example:

  unleashed sandbox --port 8080 --seed 100

It serves until Ctrl-C (or SIGTERM), holding the terminal: use another one
for the commands. Its first line on stdout is "listening on URL"; when it
makes up credentials, the second is
"credentials UNLEASHED_API_ID=... UNLEASHED_API_KEY=...". The exit code is
the sandbox's.
]=]

H.help = [=[
usage: unleashed help [COMMAND]

Prints the help of the command (po list, po get, run, ...), or this
program's. An unknown command is a usage error (exit 2).
]=]

-- po sync, po watch, po report: their texts come with them (unleashed.cli.sync).
for topic, text in pairs(require("unleashed.cli.sync").HELP) do
  local common = topic == "po report" and "" or ("\n" .. COMMON_HELP .. "\n")
  H[topic] = text .. common .. "\n" .. EXIT_HELP .. "\n"
end

return H
