#!/usr/bin/python3
"""The script users write today: Python 3 + requests, one page after another.

It signs as the API's authentication page says (base64 HMAC-SHA256 of the raw
query text, keyed with the API key's bytes) and sends the same pairs, in the
same order, percent-encoded. One requests.Session keeps the connection alive,
the kindest reading of such a script.

  baseline.py list BASE_URL API_ID API_KEY PAGE_SIZE
  baseline.py get  BASE_URL API_ID API_KEY GUID COUNT

Prints one JSON line: seconds, requests, cpu_seconds (time.process_time), and
orders (list) or rps (get). Timing starts after the imports, as a user's
script would be timed by the work it does.
"""
import base64
import hashlib
import hmac
import json
import sys
import time
from urllib.parse import quote

import requests


def signed_get(session, base_url, api_id, api_key, path, params):
    signed = "&".join("%s=%s" % (k, v) for k, v in params)
    wire = "&".join("%s=%s" % (quote(k, safe=""), quote(v, safe="")) for k, v in params)
    signature = base64.b64encode(
        hmac.new(api_key.encode("utf-8"), signed.encode("utf-8"), hashlib.sha256).digest()
    ).decode("ascii")
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "api-auth-id": api_id,
        "api-auth-signature": signature,
        "client-type": "acme/SyncPurchaseOrders",
    }
    url = base_url + path + ("?" + wire if wire else "")
    response = session.get(url, headers=headers, timeout=60)
    if response.status_code != 200:
        raise SystemExit("GET %s: HTTP %d" % (path, response.status_code))
    return response.json()


def list_all(session, base_url, api_id, api_key, page_size):
    orders = requests_made = 0
    page = pages = 1
    while page <= pages:
        data = signed_get(session, base_url, api_id, api_key, "/PurchaseOrders/Page/%d" % page,
                          [("pageSize", str(page_size))])
        requests_made += 1
        pages = data["Pagination"]["NumberOfPages"]
        for order in data["Items"]:
            orders += 1 if order["Guid"] else 0
        page += 1
    return {"requests": requests_made, "orders": orders, "pages": pages}


def get_many(session, base_url, api_id, api_key, guid, count):
    for _ in range(count):
        order = signed_get(session, base_url, api_id, api_key, "/PurchaseOrders/" + guid, [])
        if not order.get("Guid"):
            raise SystemExit("GET /PurchaseOrders/%s: no Guid in the answer" % guid)
    return {"requests": count}


def main(argv):
    if len(argv) < 6 or argv[1] not in ("list", "get"):
        raise SystemExit(__doc__)
    mode, base_url, api_id, api_key = argv[1], argv[2].rstrip("/"), argv[3], argv[4]
    session = requests.Session()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if mode == "list":
        out = list_all(session, base_url, api_id, api_key, int(argv[5]))
    else:
        out = get_many(session, base_url, api_id, api_key, argv[5], int(argv[6]))
    out["seconds"] = time.perf_counter() - wall0
    out["cpu_seconds"] = time.process_time() - cpu0
    if mode == "get":
        out["rps"] = out["requests"] / out["seconds"]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
