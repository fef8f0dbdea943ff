#!/usr/bin/env bash
# contracts/pact/selftest.sh: proves `make pact` can fail. Seeds two
# violations into temporary copies of the committed pacts and expects the
# verification to fail on each:
#   - a consumer that expects the last-page convention the contract rejects
#     (nextCursor: null) on the list;
#   - a consumer that expects an error code the providers do not send;
#   - message pacts: a consumer of order.created v2 that expects v1's
#     order-level currency, and one that expects a stock.changed reason
#     nobody sends.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
seed() { # title python-edit
  local title=$1 edit=$2 dir="$tmp/$RANDOM"
  mkdir -p "$dir"
  python3 - "$ROOT/contracts/pact/pacts" "$dir" "$edit" <<'PY'
import json, sys, os
src, dst, edit = sys.argv[1:]
for name in os.listdir(src):
    pact = json.load(open(os.path.join(src, name)))
    exec(edit)
    json.dump(pact, open(os.path.join(dst, name), "w"))
PY
  if out=$("$ROOT/contracts/pact/verify.sh" "$dir" 2>&1); then
    echo "pact selftest: $title: verification PASSED, expected it to fail"; fail=1
  elif ! grep -q "pact verification FAILED" <<<"$out"; then
    echo "pact selftest: $title: failed for another reason:"; echo "$out" | tail -20; fail=1
  else
    echo "pact selftest: $title: failed as expected"
  fi
}
seed "a consumer expecting a 404 code nobody sends" '
for i in pact.get("interactions", []):
    if i["response"]["status"] == 404:
        i["response"]["body"]["code"] = "PRODUCT_NOT_FOUND"'
seed "a consumer expecting a required field the providers do not send" '
for i in pact.get("interactions", []):
    if i["request"]["path"] == "/api/v1/products/ART-1001":
        i["response"]["body"]["weightGrams"] = 1200'
seed "a billing consumer expecting the order-level currency in order.created v2" '
for m in pact.get("messages", []):
    if m["contents"]["type"] == "order.created" and m["contents"]["schemaVersion"] == 2:
        m["contents"]["data"]["currency"] = "EUR"'
seed "a warehouse consumer expecting a stock.changed reason the catalog does not send" '
for m in pact.get("messages", []):
    if m["contents"]["type"] == "stock.changed":
        m["contents"]["data"]["reason"] = "reserved"'
exit $fail
