#!/usr/bin/python3
"""A client of the Unleashed API written from its documentation alone, with
nothing from this project: HMAC-SHA256 signing of the decoded query, RFC 3986
encoding on the wire, listing, paging, filtering with special characters, a
create with a line, receipt and complete, and the 403 for a bad signature.

    independent_client.py BASE_URL API_ID API_KEY

Prints one "ok NAME" line per check; exits 0 when every check passed, 1 at the
first failure (with "FAIL NAME: why")."""
import base64
import hashlib
import hmac
import re
import sys
import uuid
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import quote

import requests


class Failed(Exception):
    pass


class Api:
    def __init__(self, base_url, api_id, api_key):
        self.base = base_url.rstrip("/")
        self.api_id = api_id
        self.api_key = api_key
        self.http = requests.Session()

    def sign(self, text):
        mac = hmac.new(self.api_key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256)
        return base64.b64encode(mac.digest()).decode("ascii")

    def call(self, method, path, params=(), body=None, signature=None):
        # One ordered list gives both texts: the raw one is signed, the
        # encoded one is sent.
        signed = "&".join("%s=%s" % (k, v) for k, v in params)
        wire = "&".join("%s=%s" % (quote(str(k), safe=""), quote(str(v), safe="")) for k, v in params)
        url = self.base + path + ("?" + wire if wire else "")
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "api-auth-id": self.api_id,
            "api-auth-signature": signature if signature is not None else self.sign(signed),
            "client-type": "independent/SpecClient",
        }
        return self.http.request(method, url, headers=headers, json=body, timeout=30)

    def json(self, method, path, params=(), body=None, status=200):
        r = self.call(method, path, params, body)
        if r.status_code != status:
            raise Failed("%s %s: HTTP %d %s" % (method, path, r.status_code, r.text[:300]))
        return r.json()


def check(cond, why):
    if not cond:
        raise Failed(why)


def envelope(doc, where):
    p = doc.get("Pagination")
    check(isinstance(p, dict), where + ": no Pagination")
    for k in ("NumberOfItems", "PageSize", "PageNumber", "NumberOfPages"):
        check(isinstance(p.get(k), int), where + ": Pagination." + k + " missing")
    check(isinstance(doc.get("Items"), list), where + ": no Items list")
    return p


def dotnet_ms(text):
    m = re.fullmatch(r"/Date\((-?\d+)([+-]\d{4})?\)/", text)
    if not m:
        raise Failed("not a /Date(ms)/ date: %r" % text)
    return int(m.group(1))


def round2(x):
    return Decimal(x).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def run(api):
    checks = []

    def ok(name):
        checks.append(name)
        print("ok " + name, flush=True)

    # listing
    first = api.json("GET", "/PurchaseOrders")
    p = envelope(first, "list")
    check(p["PageNumber"] == 1 and p["NumberOfItems"] > 0, "list: expected orders on page 1")
    ok("list")

    # paging, both URL forms, and past the end
    a = api.json("GET", "/PurchaseOrders/Page/2", [("pageSize", 5)])
    b = api.json("GET", "/PurchaseOrders/2", [("pageSize", 5)])
    one = api.json("GET", "/PurchaseOrders/Page/1", [("pageSize", 5)])
    pa = envelope(a, "page 2")
    check(pa["PageNumber"] == 2 and pa["PageSize"] == 5, "page 2: numbering")
    same = [o["Guid"] for o in a["Items"]] == [o["Guid"] for o in b["Items"]]
    check(same, "page 2: the two URL forms differ")
    check(len(a["Items"]) == 5, "page 2: expected 5 items")
    check(not set(o["Guid"] for o in a["Items"]) & set(o["Guid"] for o in one["Items"]), "pages overlap")
    last = a["Pagination"]["NumberOfPages"]
    past = api.json("GET", "/PurchaseOrders/Page/%d" % (last + 1), [("pageSize", 5)])
    check(past["Items"] == [], "past the last page: expected no items")
    ok("paging")

    # the documentation's own example
    ex = api.json("GET", "/PurchaseOrders", [("supplierCode", "ACME"), ("startDate", "2012-12-31")])
    envelope(ex, "supplierCode=ACME&startDate=2012-12-31")
    check(all(o["Supplier"]["SupplierCode"].startswith("ACME") for o in ex["Items"]), "ACME filter")
    since = 1356912000000  # 2012-12-31T00:00:00Z
    check(all(dotnet_ms(o["OrderDate"]) >= since for o in ex["Items"]), "startDate filter")
    ok("documented example")

    # filters whose values need encoding: read the suppliers, use the awkward codes
    suppliers = api.json("GET", "/Suppliers", [("pageSize", 1000)])["Items"]
    awkward = [s for s in suppliers if any(c in s["SupplierCode"] for c in " &+#")]
    for ch in " &+#":
        check(any(ch in s["SupplierCode"] for s in awkward), "no supplier code with %r to filter by" % ch)
    found = 0
    for s in awkward:
        code = s["SupplierCode"]
        doc = api.json("GET", "/PurchaseOrders", [("supplierCode", code), ("pageSize", 1000)])
        envelope(doc, "supplierCode=" + code)
        for o in doc["Items"]:
            got = o["Supplier"]["SupplierCode"]
            check(got.startswith(code), "filter %r returned %r" % (code, got))
        found += len(doc["Items"])
    check(found > 0, "no order for any supplier code with special characters")
    ok("filter with special characters (%d codes, %d orders)" % (len(awkward), found))

    # a wrong signature: signing the encoded text instead of the raw one, and a wrong key
    code = next(s["SupplierCode"] for s in awkward if " " in s["SupplierCode"])
    wrong = api.sign("supplierCode=" + quote(code, safe=""))
    r = api.call("GET", "/PurchaseOrders", [("supplierCode", code)], signature=wrong)
    check(r.status_code == 403, "encoded-text signature: HTTP %d, expected 403" % r.status_code)
    r = Api(api.base, api.api_id, api.api_key + "x").call("GET", "/PurchaseOrders")
    check(r.status_code == 403, "wrong key: HTTP %d, expected 403" % r.status_code)
    ok("wrong signature gets 403")

    # create with one line: LineTax follows the documented hierarchy, on the
    # fields the live API has: the product's purchase tax (TaxablePurchase
    # false: none; XeroTaxRate; XeroTaxCode among the expense taxes that are
    # not obsolete), then the supplier's (Taxable false: none; TaxRate). No
    # field gives the account's default; this line never needs it.
    supplier = next(s for s in awkward if "&" in s["SupplierCode"])
    taxes = api.json("GET", "/Taxes", [("canApplyToExpenses", "true")])["Items"]
    expense = {}
    for t in taxes:
        if not t["Obsolete"] and t["CanApplyToExpenses"]:
            expense.setdefault(t["TaxCode"].lower(), t["TaxRate"])
    products = api.json("GET", "/Products", [("pageSize", 1000)])["Items"]
    product = next(p for p in products if not p["IsBatchTracked"] and not p["IsSerialized"])
    if product.get("TaxablePurchase") is False:
        rate = 0
    elif product.get("XeroTaxRate") is not None:
        rate = product["XeroTaxRate"]
    elif product.get("XeroTaxCode"):
        rate = expense[product["XeroTaxCode"].lower()]
    elif supplier.get("Taxable") is False:
        rate = 0
    else:
        rate = supplier["TaxRate"]
    qty, price = Decimal("4"), Decimal("12.35")
    line_total = round2(qty * price)
    line_tax = round2(line_total * Decimal(str(rate)))
    guid = str(uuid.uuid4())
    order = {
        "OrderStatus": "Placed",
        "Supplier": {"SupplierCode": supplier["SupplierCode"]},
        "PurchaseOrderLines": [{
            "LineNumber": 1,
            "Product": {"ProductCode": product["ProductCode"]},
            "OrderQuantity": float(qty),
            "UnitPrice": float(price),
            "LineTotal": float(line_total),
            "LineTax": float(line_tax),
        }],
        "SubTotal": float(line_total),
        "TaxTotal": float(line_tax),
        "Total": float(line_total + line_tax),
    }
    created = api.json("POST", "/PurchaseOrders/" + guid, body=order, status=201)  # as recorded creates
    check(created["Guid"].lower() == guid, "create: Guid")
    check(created["OrderStatus"] == "Placed", "create: status " + str(created["OrderStatus"]))
    check(len(created["PurchaseOrderLines"]) == 1, "create: lines")
    check(Decimal(str(created["Total"])) == line_total + line_tax, "create: Total")
    number = created["OrderNumber"]
    by_number = api.json("GET", "/PurchaseOrders", [("orderNumber", number)])
    check([o["Guid"].lower() for o in by_number["Items"]] == [guid], "orderNumber filter")
    ok("create %s with a line" % number)

    receipted = api.json("POST", "/PurchaseOrders/%s/Receipt" % guid)
    check(receipted["OrderStatus"] == "Receipted", "receipt: status " + str(receipted["OrderStatus"]))
    check(receipted.get("ReceivedDate"), "receipt: no ReceivedDate")
    ok("receipt")

    completed = api.json("POST", "/PurchaseOrders/%s/Complete" % guid)
    check(completed["OrderStatus"] == "Complete", "complete: status " + str(completed["OrderStatus"]))
    check(completed.get("CompletedDate"), "complete: no CompletedDate")
    check(api.json("GET", "/PurchaseOrders/" + guid)["OrderStatus"] == "Complete", "complete: not stored")
    ok("complete")
    return checks


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        checks = run(Api(argv[1], argv[2], argv[3]))
    except (Failed, requests.RequestException, KeyError, ValueError, StopIteration) as e:
        print("FAIL %s: %s" % (type(e).__name__, e), flush=True)
        return 1
    print("all %d checks passed" % len(checks))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
