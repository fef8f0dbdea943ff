#!/usr/bin/env bash
# contracts/selftest.sh: proves the contract gate (contracts/check.sh) can
# fail. On a temporary copy of the contract files, committed to a scratch git
# repository the way a CI checkout sees them, it checks that
#   - the unchanged copy passes (the setup is sound);
#   - a COMMITTED removal of a query parameter fails oasdiff
#     (request-parameter-removed, raised to ERR by contracts/oasdiff-levels.txt);
#   - a committed response schema closed with additionalProperties: false fails
#     Spectral's house rule ficus-responses-open;
#   - a committed spectral:oas warning (an operation without a description)
#     fails, since the gate allows 0 warnings;
#   - a committed AsyncAPI message whose payload names a schema file that
#     does not exist fails (spectral:asyncapi, invalid-ref).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${OASDIFF:?}" "${SPECTRAL:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/newsvc/catalog" "$tmp/newsvc/order"
cp -r "$ROOT/contracts" "$tmp/" 2>/dev/null || true
rm -rf "$tmp/contracts/spectral/node_modules" "$tmp/contracts/pact/node_modules"
cp "$ROOT/newsvc/catalog/openapi.yaml" "$tmp/newsvc/catalog/"
cp "$ROOT/newsvc/order/openapi.yaml" "$tmp/newsvc/order/"
cd "$tmp"
git init -q . && git add -A && git -c user.name=selftest -c user.email=selftest@localhost commit -qm base

fail=0
expect() { # expect pass|fail PATTERN TITLE
  local want=$1 pattern=$2 title=$3 out rc=0
  out=$(OASDIFF=$OASDIFF SPECTRAL=$SPECTRAL ./contracts/check.sh "$tmp" 2>&1) || rc=$?
  if [[ $want == pass && $rc -ne 0 ]]; then echo "selftest: $title: expected to pass, failed:"; echo "$out"; fail=1
  elif [[ $want == fail && $rc -eq 0 ]]; then echo "selftest: $title: expected to FAIL, passed"; fail=1
  elif [[ $want == fail ]] && ! grep -q -- "$pattern" <<<"$out"; then echo "selftest: $title: failed without naming $pattern:"; echo "$out"; fail=1
  else echo "selftest: $title: ${want}ed as expected"; fi
}
commit() { git -c user.name=selftest -c user.email=selftest@localhost commit -qam "$1"; }
reset() { git reset -q --hard HEAD~1; }

expect pass "" "unchanged contracts"

# A removed query parameter, committed.
python3 - <<'PY'
p='newsvc/catalog/openapi.yaml'; s=open(p).read()
old='''        - $ref: "#/components/parameters/Cursor"
        - $ref: "#/components/parameters/Category"
      responses:
        "200":
          description: One page of products.
          content:'''
assert s.count(old)==1
open(p,'w').write(s.replace(old,'''        - $ref: "#/components/parameters/Cursor"
      responses:
        "200":
          description: One page of products.
          content:'''))
PY
commit "drop the category filter of v2"
expect fail request-parameter-removed "committed removal of a query parameter"
reset

# A closed response schema, committed.
python3 - <<'PY'
p='newsvc/order/openapi.yaml'; s=open(p).read()
old='''    OrderPage:
      type: object
'''
assert s.count(old)==1
open(p,'w').write(s.replace(old, old+'      additionalProperties: false\n'))
PY
commit "close OrderPage"
expect fail ficus-responses-open "committed additionalProperties: false on a response"
reset

# A spectral:oas warning, committed.
python3 - <<'PY'
p='newsvc/order/openapi.yaml'; s=open(p).read()
old='      description: The order as it is now; `version` counts its changes.\n'
assert s.count(old)==1
open(p,'w').write(s.replace(old,''))
PY
commit "drop a description"
expect fail operation-description "committed spectral warning"
reset

# An event payload pointing at a missing schema, committed.
sed -i 's#\./schemas/order.paid.v1.json#./schemas/order.payed.v1.json#' contracts/events/asyncapi.yaml
grep -q order.payed contracts/events/asyncapi.yaml
commit "misspell a payload schema"
expect fail invalid-ref "committed AsyncAPI payload \$ref to a missing schema"
reset

exit $fail
