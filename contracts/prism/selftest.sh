#!/usr/bin/env bash
# contracts/prism/selftest.sh: proves the Prism check can fail. It runs
# contracts/prism/check.sh with a copy of the catalog's spec in which
# Product requires a field no provider sends (weightGrams), and expects
# Prism to report the violation on the product interaction.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$ROOT/newsvc/catalog/openapi.yaml" "$tmp/catalog.yaml" <<'PY'
import sys
src, dst = sys.argv[1:]
s = open(src).read()
old = "      required: [sku, name, description, category, price, stock, available, updatedAt, version]\n"
assert s.count(old) >= 1, "Product.required not found"
open(dst, "w").write(s.replace(old, old.replace("version]", "version, weightGrams]"), 1))
PY
if out=$(CATALOG_SPEC="$tmp/catalog.yaml" "$ROOT/contracts/prism/check.sh" 2>&1); then
  echo "prism selftest: a spec requiring weightGrams PASSED, expected violations"; echo "$out" | tail -5; exit 1
fi
if ! grep -q "weightGrams" <<<"$out" || ! grep -q "prism check FAILED" <<<"$out"; then
  echo "prism selftest: failed for another reason:"; echo "$out" | tail -20; exit 1
fi
grep "violation" <<<"$out" | head -3
echo "prism selftest: a spec requiring a field nobody sends failed as expected"
