#!/usr/bin/env bash
# contracts/prism/check.sh: Stoplight Prism in proxy mode in front of every
# provider of the contract, with the committed specs, replaying the sample
# interactions of the committed HTTP pacts (contracts/pact/pacts). Prism
# validates each request and response against the spec and reports what
# does not conform in its sl-violations response header; the check fails on
# any violation.
#
#   catalog service  <- Prism with newsvc/catalog/openapi.yaml
#   order service    <- Prism with newsvc/order/openapi.yaml
#   ACL backend      <- Prism with the ACL's own GET /openapi.yaml (both merged)
#   gateway          <- Prism with that merged document (demo config, canary 0)
#
# Before each interaction its provider state is set up on the side that
# serves it, as pact-verifier does. Every process started is stopped by PID.
#
# Usage: contracts/prism/check.sh [PACT_DIR]   (FICUS=bin/ficus, PRISM=...)
# Exit 1 when any interaction has a violation (or a target cannot be run).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PACTS=${1:-$ROOT/contracts/pact/pacts}
FICUS=${FICUS:-$ROOT/bin/ficus}
PRISM=${PRISM:-$ROOT/contracts/prism/node_modules/.bin/prism}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

read -r PL PC PO PA PG PM XC XO XA XG < <(python3 - <<'PY'
import socket
socks=[socket.socket() for _ in range(10)]
for s in socks: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()
PY
)
start() { # name command args...
  local name=$1; shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
}
ready() { # name url [curl args]
  local name=$1 url=$2; shift 2
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$@" "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "prism check: $name did not start; its log:"; cat "$tmp/$name.log"; exit 1
}

start legacy "$FICUS" legacy --listen 127.0.0.1:$PL --db "$tmp/legacy.db"
start catalog "$FICUS" catalog --listen 127.0.0.1:$PC --db "$tmp/catalog.db" --provider-states
ready legacy "http://127.0.0.1:$PL/shop/catalog.do?page=1"
ready catalog "http://127.0.0.1:$PC/openapi.yaml"
start orders "$FICUS" orders --listen 127.0.0.1:$PO --db "$tmp/orders.db" --catalog "http://127.0.0.1:$PC" --provider-states
start acl "$FICUS" acl --listen 127.0.0.1:$PA --legacy "http://127.0.0.1:$PL" --db "$tmp/acl.db" --provider-states
"$FICUS" demo --data "$tmp" --print-config 2>/dev/null | sed \
  -e "s/127.0.0.1:8080/127.0.0.1:$PG/; s/127.0.0.1:8090/127.0.0.1:$PM/" \
  -e "s/127.0.0.1:8081/127.0.0.1:$PL/; s/127.0.0.1:8082/127.0.0.1:$PC/" \
  -e "s/127.0.0.1:8083/127.0.0.1:$PO/; s/127.0.0.1:8084/127.0.0.1:$PA/" >"$tmp/gateway.yaml"
printf 'intents:\n  db: %s/intents.db\n' "$tmp" >>"$tmp/gateway.yaml"
start gateway "$FICUS" gateway --config "$tmp/gateway.yaml"
ready orders "http://127.0.0.1:$PO/openapi.yaml"
ready acl "http://127.0.0.1:$PA/openapi.yaml"
ready gateway "http://127.0.0.1:$PG/api/v2/products?limit=1"
curl -fsS -o "$tmp/acl-openapi.yaml" "http://127.0.0.1:$PA/openapi.yaml"

prism() { # name spec upstream port
  start "prism-$1" "$PRISM" proxy "$2" "$3" --host 127.0.0.1 --port "$4" --errors false -v warn
}
prism catalog "${CATALOG_SPEC:-$ROOT/newsvc/catalog/openapi.yaml}" "http://127.0.0.1:$PC" "$XC"
prism orders "${ORDERS_SPEC:-$ROOT/newsvc/order/openapi.yaml}" "http://127.0.0.1:$PO" "$XO"
prism acl "$tmp/acl-openapi.yaml" "http://127.0.0.1:$PA" "$XA"
prism gateway "$tmp/acl-openapi.yaml" "http://127.0.0.1:$PG" "$XG"
for t in catalog:$XC orders:$XO acl:$XA gateway:$XG; do
  # Any HTTP answer means Prism is up.
  up=0
  for _ in $(seq 1 300); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${t##*:}/openapi.yaml" 2>/dev/null)
    if [[ $code != 000 ]]; then up=1; break; fi
    sleep 0.1
  done
  if ((!up)); then echo "prism check: Prism for ${t%%:*} did not start; its log:"; cat "$tmp/prism-${t%%:*}.log"; exit 1; fi
done

python3 - "$PACTS" "$XC" "$XO" "$XA" "$XG" "$PC" "$PO" "$PA" <<'PY'
import json, os, sys, urllib.request, urllib.error, urllib.parse
pacts, XC, XO, XA, XG, PC, PO, PA = sys.argv[1:]
targets = {  # provider -> [(title, prism port, state port)]
    "ficus-catalog": [("catalog", XC, PC), ("acl", XA, PA), ("gateway", XG, PA)],
    "ficus-orders": [("orders", XO, PO), ("acl", XA, PA), ("gateway", XG, PA)],
}
def call(method, url, headers=None, body=None):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
total = checked = 0
for name in sorted(os.listdir(pacts)):
    pact = json.load(open(os.path.join(pacts, name)))
    if "interactions" not in pact:
        continue  # message pacts: events are checked against contracts/events
    for title, port, sport in targets[pact["provider"]["name"]]:
        for i in pact["interactions"]:
            for st in i.get("providerStates", []):
                s, _, b = call("POST", f"http://127.0.0.1:{sport}/_pact/provider-states",
                               {"Content-Type": "application/json"},
                               json.dumps({"state": st["name"], "params": st.get("params", {}), "action": "setup"}).encode())
                if s >= 300:
                    print(f"prism check: {title}: state {st['name']!r} failed: {s} {b[:200]!r}"); total += 1
            r = i["request"]
            q = r.get("query")
            qs = urllib.parse.urlencode([(k, v) for k, vs in q.items() for v in vs]) if isinstance(q, dict) else (q or "")
            body = r.get("body")
            data = json.dumps(body).encode() if body is not None else None
            status, hdr, out = call(r["method"], f"http://127.0.0.1:{port}{r['path']}" + ("?" + qs if qs else ""),
                                    dict(r.get("headers") or {}), data)
            checked += 1
            raw = {k.lower(): v for k, v in hdr.items()}.get("sl-violations")
            violations = json.loads(raw) if raw else []
            if violations:
                total += len(violations)
                print(f"prism check: {title}: {i['description']} ({r['method']} {r['path']} -> {status}): {len(violations)} violation(s)")
                for v in violations:
                    print(f"    {v.get('severity')}: {'.'.join(map(str, v.get('path', [])))}: {v.get('message')}")
print(f"prism check: {checked} interactions replayed through Prism, {total} violations")
sys.exit(1 if total else 0)
PY
rc=$?
if ((rc != 0)); then echo "prism check FAILED"; exit 1; fi
echo "prism check passed"
