#!/usr/bin/env bash
# contracts/pact/verify.sh: Pact provider verification as a consumer team
# runs it. Starts the built binary's legacy shop, catalog, order service, ACL
# backend and gateway on free loopback ports (provider states enabled), runs
# the real pact-verifier with every pact in contracts/pact/pacts against
#   the catalog and the order service (the new services),
#   the ACL backend (the same contract served from the legacy),
#   the gateway (demo configuration, canary 0: the ACL serves everything),
# message pacts (a "messages" array: events) against the service that emits
# them only, through its message endpoint (--base-path /_pact/messages,
# provider states on), and stops every process it started, by PID.
#
# Usage: contracts/pact/verify.sh [PACT_DIR]   (FICUS=bin/ficus, VERIFIER=...)
# PACT_DIR defaults to contracts/pact/pacts. Exit 1 when any verification fails.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PACTS=${1:-$ROOT/contracts/pact/pacts}
FICUS=${FICUS:-$ROOT/bin/ficus}
VERIFIER=${VERIFIER:-$ROOT/contracts/pact/node_modules/.bin/pact-verifier}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

read -r PL PC PO PA PG PM < <(python3 - <<'PY'
import socket
socks=[socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()
PY
)
start() { # name args...
  local name=$1; shift
  "$FICUS" "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
}
ready() { # name url
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "pact: $1 did not start; its log:"; cat "$tmp/$1.log"; exit 1
}

start legacy legacy --listen 127.0.0.1:$PL --db "$tmp/legacy.db"
start catalog catalog --listen 127.0.0.1:$PC --db "$tmp/catalog.db" --provider-states
ready legacy "http://127.0.0.1:$PL/shop/catalog.do?page=1"
ready catalog "http://127.0.0.1:$PC/openapi.yaml"
start orders orders --listen 127.0.0.1:$PO --db "$tmp/orders.db" --catalog "http://127.0.0.1:$PC" --provider-states
start acl acl --listen 127.0.0.1:$PA --legacy "http://127.0.0.1:$PL" --db "$tmp/acl.db" --provider-states
# The demo gateway configuration, moved to these ports and this directory.
"$FICUS" demo --data "$tmp" --print-config 2>/dev/null | sed \
  -e "s/127.0.0.1:8080/127.0.0.1:$PG/; s/127.0.0.1:8090/127.0.0.1:$PM/" \
  -e "s/127.0.0.1:8081/127.0.0.1:$PL/; s/127.0.0.1:8082/127.0.0.1:$PC/" \
  -e "s/127.0.0.1:8083/127.0.0.1:$PO/; s/127.0.0.1:8084/127.0.0.1:$PA/" >"$tmp/gateway.yaml"
printf 'intents:\n  db: %s/intents.db\n' "$tmp" >>"$tmp/gateway.yaml"
start gateway gateway --config "$tmp/gateway.yaml"
ready orders "http://127.0.0.1:$PO/openapi.yaml"
ready acl "http://127.0.0.1:$PA/openapi.yaml"
ready gateway "http://127.0.0.1:$PG/api/v2/products?limit=1"

export PACT_DO_NOT_TRACK=true
failed=()
verify() { # title port state-port pact-file provider-name [verifier args...]
  local title=$1 port=$2 sport=$3 file=$4 name=$5
  shift 5
  echo "== pact: $(basename "$file") against $title"
  local rc=0
  "$VERIFIER" --loglevel error --no-colour -f "$file" -h 127.0.0.1 -p "$port" -n "$name" \
    --state-change-url "http://127.0.0.1:$sport/_pact/provider-states" "$@" >"$tmp/verify.out" 2>&1 || rc=$?
  cat "$tmp/verify.out"
  if ((rc != 0)); then failed+=("$(basename "$file") against $title"); fi
}
for f in "$PACTS"/*.json; do
  kind=$(python3 -c 'import json,sys;p=json.load(open(sys.argv[1]));print(p["provider"]["name"]+("/messages" if "messages" in p else ""))' "$f")
  case $kind in
    ficus-catalog/messages) verify "the catalog service (messages)" "$PC" "$PC" "$f" ficus-catalog --base-path /_pact/messages; continue ;;
    ficus-orders/messages) verify "the order service (messages)" "$PO" "$PO" "$f" ficus-orders --base-path /_pact/messages; continue ;;
  esac
  case $kind in
    ficus-catalog) verify "the catalog service" "$PC" "$PC" "$f" ficus-catalog ;;
    ficus-orders) verify "the order service" "$PO" "$PO" "$f" ficus-orders ;;
    *) echo "pact: $f names an unknown provider"; failed+=("$f"); continue ;;
  esac
  verify "the ACL backend" "$PA" "$PA" "$f" ficus-acl
  verify "the gateway (canary 0: ACL side)" "$PG" "$PA" "$f" ficus-gateway
done

if ((${#failed[@]})); then
  printf 'pact verification FAILED:\n'; printf '  %s\n' "${failed[@]}"; exit 1
fi
echo "pact verification passed"
