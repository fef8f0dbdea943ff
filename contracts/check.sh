#!/usr/bin/env bash
# contracts/check.sh [ROOT]: the contract gate that `make contract` runs.
#
#  1. Each API's spec against its committed published baseline
#     (contracts/published/<api>-v<major>.yaml) with oasdiff's breaking-change
#     checks, at ERR including the checks raised in contracts/oasdiff-levels.txt
#     (removed parameters and properties, changed patterns and media types).
#  2. Spectral with contracts/spectral/ruleset.yaml (spectral:oas plus the
#     house rules): 0 errors and 0 warnings.
#  3. Spectral with contracts/spectral/asyncapi-ruleset.yaml on the event
#     contract, contracts/events/asyncapi.yaml (AsyncAPI 3; every payload
#     $ref into contracts/events/schemas must resolve): 0 errors, 0 warnings.
#     The events the services emit are checked against those schemas by the
#     Go tests in contracts/events.
#
# ROOT defaults to the repository. OASDIFF and SPECTRAL name the pinned tools
# (the Makefile installs them). Exit status 1 names every failing check.
set -uo pipefail
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
OASDIFF=${OASDIFF:?OASDIFF must name the oasdiff binary}
SPECTRAL=${SPECTRAL:?SPECTRAL must name the spectral binary}
cd "$ROOT"

# api  spec  baseline: the published APIs. Publishing a new baseline is
# deliberate: `make publish-contract API=<api>` (docs/contracts.md).
APIS=(
  "catalog newsvc/catalog/openapi.yaml contracts/published/catalog-v1.yaml"
  "orders newsvc/order/openapi.yaml contracts/published/orders-v1.yaml"
)

failed=()
specs=()
for row in "${APIS[@]}"; do
  read -r api spec base <<<"$row"
  specs+=("$spec")
  if [[ ! -f $base ]]; then
    echo "== $api: no published baseline $base (publish one with: make publish-contract API=$api)"
    failed+=("$api: baseline missing"); continue
  fi
  echo "== $api: $spec against the published $base"
  if ! "$OASDIFF" breaking "$base" "$spec" --fail-on ERR \
      --severity-levels contracts/oasdiff-levels.txt --format singleline --color never; then
    echo "$api breaks its consumers: make the change additive, or version it (docs/contracts.md)"
    failed+=("$api: breaking change against $base")
  fi
done

echo "== spectral (contracts/spectral/ruleset.yaml) on ${specs[*]}"
if ! "$SPECTRAL" lint --ruleset contracts/spectral/ruleset.yaml --fail-severity warn \
    --display-only-failures --quiet "${specs[@]}"; then
  "$SPECTRAL" lint --ruleset contracts/spectral/ruleset.yaml --fail-severity warn "${specs[@]}" || true
  failed+=("spectral: errors or warnings")
fi

EVENTS=contracts/events/asyncapi.yaml
echo "== spectral (contracts/spectral/asyncapi-ruleset.yaml) on $EVENTS"
if ! "$SPECTRAL" lint --ruleset contracts/spectral/asyncapi-ruleset.yaml --fail-severity warn \
    --display-only-failures --quiet "$EVENTS"; then
  "$SPECTRAL" lint --ruleset contracts/spectral/asyncapi-ruleset.yaml --fail-severity warn "$EVENTS" || true
  failed+=("spectral: errors or warnings in $EVENTS")
fi

if ((${#failed[@]})); then
  printf 'contract gate FAILED:\n'; printf '  %s\n' "${failed[@]}"; exit 1
fi
echo "contract gate passed"
