#!/usr/bin/env bash
# dashboards/check.sh — checks the Grafana dashboards, the Prometheus rules
# and every PromQL expression in them against a real Prometheus.
#
#   1. promtool check rules + promtool test rules (alert unit tests)
#   2. dashboard schema: every dashboard through the Go schema check
#      (grafana-foundation-sdk strict decoding + Ficus's rules, see
#      dashboards.CheckSchema), which must also catch every committed
#      seeded mistake (testdata/seeded/); and type-checked against
#      @grafana/schema (TypeScript)
#   3. live: every process's /metrics passes `promtool check metrics`; a
#      Prometheus started here scrapes them and every panel, variable,
#      recording and alert expression must return at least one series
#      (metrics listed in dashboards.PendingMetrics are reported pending;
#      one that is exported after all fails until it leaves the list).
#
# Where the metrics come from:
#   `ficus demo`        started here with a temporary --data directory
#                       (bin/ficus, or a fresh build of ./cmd/ficus);
#                       traffic, a canary change and a legacy outage are
#                       driven through it. Its ports (8080-8087, 8090) must be free.
#   --admin HOST:PORT   a gateway already running (its admin listener);
#                       add --public HOST:PORT to have traffic driven at it.
#                       The services are scraped where prometheus.yml says.
#
# Options: --static       only steps 1 and 2
#
# Installs Debian's prometheus package when promtool or prometheus is
# missing (needs root). Stops everything it started, by PID. Bounded: the
# whole run stays under 4 minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DASH="$ROOT/dashboards"
STATIC=0 ADMIN="" PUBLIC=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --static) STATIC=1 ;;
    --admin) ADMIN="$2"; shift ;;
    --public) PUBLIC="$2"; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

START=$SECONDS
BUDGET=230 # seconds for the whole run, installs excluded
say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL check.sh: %s\n' "$*"; exit 1; }
left() { echo $((BUDGET - (SECONDS - START))); }

# ---- tools ----
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  say "installing Debian's prometheus package (promtool, prometheus)"
  [[ $(id -u) -eq 0 ]] || fail "promtool/prometheus missing and not root: apt-get install prometheus"
  apt-get update -qq >/dev/null
  # Only the binaries matter: the packaged service is never used (no
  # systemd here, and we run our own process on a free port).
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null
  START=$SECONDS
fi
command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are needed for the schema type-check"

# ---- 1. rules ----
say "promtool check rules"
promtool check rules "$DASH"/prometheus/rules/*.yml
say "promtool test rules"
promtool test rules "$DASH"/prometheus/tests/*.test.yml
say "promtool check config"
promtool check config "$DASH/prometheus/prometheus.yml"

# ---- 2. schema ----
say "dashboard JSON against the Grafana schema (grafana-foundation-sdk, strict) and Ficus's rules"
(cd "$ROOT" && go run ./dashboards/schemacheck dashboards/grafana/*.json) || fail "the dashboards do not pass the schema check"
say "the schema check catches every seeded mistake (dashboards/testdata/seeded)"
(cd "$ROOT" && go run ./dashboards/schemacheck --expect-fail dashboards/testdata/seeded/*.json) || fail "a seeded mistake went through the schema check"
say "dashboard JSON against @grafana/schema (tsc)"
(
  cd "$DASH/schema-check"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  npx --no-install tsc --noEmit -p .
)
echo "PASS schema: $(ls "$DASH"/grafana/*.json | wc -l) dashboards type-check as Dashboard"

if [[ $STATIC -eq 1 ]]; then
  echo "PASS check.sh (static part only)"
  exit 0
fi

# ---- 3. live ----
TMP="$(mktemp -d "${TMPDIR:-/tmp}/ficus-dash-check.XXXXXX")"
PIDS=()
cleanup() {
  local rc=$?
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # bounded wait: a process that ignores SIGTERM for 10 s gets SIGKILL
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 ]]; then
    for f in "$TMP"/*.log; do
      [[ -s "$f" ]] || continue
      echo "---- last lines of $(basename "$f")"; tail -n 20 "$f"
    done
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for DESCRIPTION SECONDS CMD...: polls CMD every 0.5 s until it succeeds.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $end ]] || fail "$what not ready after ${secs}s"
    sleep 0.5
  done
}

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  fail "no free port found"
}

say "building the check tools"
go build -o "$TMP/promcheck" "$ROOT/dashboards/promcheck"

MODE=demo
if [[ -n "$ADMIN" ]]; then
  MODE=external
else
  FICUS="$ROOT/bin/ficus"
  if [[ ! -x "$FICUS" ]]; then
    go build -o "$TMP/ficus" "$ROOT/cmd/ficus" || fail "building ./cmd/ficus failed"
    FICUS="$TMP/ficus"
  fi
fi

case "$MODE" in
  demo)
    for p in 8080 8081 8082 8083 8084 8085 8086 8087 8090; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        fail "port $p is taken (another demo running?): stop it, or pass --admin HOST:PORT"
      fi
    done
    say "starting ficus demo (data in a temporary directory)"
    "$FICUS" demo --data "$TMP/data" >"$TMP/demo.log" 2>&1 &
    PIDS+=($!)
    ADMIN=127.0.0.1:8090 PUBLIC=127.0.0.1:8080
    wait_for "the demo's admin listener ($ADMIN/readyz)" 60 curl -fsS "http://$ADMIN/readyz"
    kill -0 "${PIDS[-1]}" 2>/dev/null || fail "ficus demo exited (ports 8080-8090 taken by another demo?)"
    ;;
  external)
    say "using the running gateway at $ADMIN"
    ;;
esac
echo "metrics: http://$ADMIN/metrics ($MODE)"

# Every target of the scrape config: the gateway, and (with the demo) the
# legacy shop's metrics listener and the services' own /metrics.
TARGETS=("ficus-gateway=$ADMIN")
if [[ $MODE == demo ]]; then
  TARGETS+=(ficus-legacy=127.0.0.1:8087 ficus-catalog=127.0.0.1:8082 ficus-orders=127.0.0.1:8083 ficus-acl=127.0.0.1:8084)
fi
for t in "${TARGETS[@]}"; do
  job="${t%%=*}" addr="${t#*=}"
  say "promtool check metrics on $job (http://$addr/metrics)"
  curl -fsS --max-time 10 "http://$addr/metrics" >"$TMP/metrics-$job.txt" || fail "GET http://$addr/metrics ($job) failed"
  if promtool check metrics <"$TMP/metrics-$job.txt"; then
    echo "PASS promtool check metrics $job ($(grep -c '^# TYPE' "$TMP/metrics-$job.txt") metric families, build $(grep -o 'ficus_build_info{[^}]*}' "$TMP/metrics-$job.txt" | head -1))"
  else
    fail "promtool check metrics found problems in http://$addr/metrics ($job)"
  fi
done

say "starting Prometheus on a free loopback port"
PROM_PORT="$(free_port)"
PROM="http://127.0.0.1:$PROM_PORT"
mkdir -p "$TMP/tsdb"
sed -e "s|\"127.0.0.1:8090\"|\"$ADMIN\"|" \
    -e "s|^  - rules/|  - $DASH/prometheus/rules/|" \
    "$DASH/prometheus/prometheus.yml" >"$TMP/prometheus.yml"
grep -q "\"$ADMIN\"" "$TMP/prometheus.yml" || fail "could not point the scrape config at $ADMIN"
promtool check config "$TMP/prometheus.yml" >/dev/null
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
wait_for "Prometheus ($PROM/-/ready)" 30 curl -fsS "$PROM/-/ready"
echo "Prometheus: $PROM"

# drive_traffic runs until killed (cleanup) or its own deadline: normal
# traffic first, then a canary change, then a legacy outage that must
# show as errors, an open breaker and fallbacks.
drive_traffic() {
  local pub="$1" adm="$2" end=$((SECONDS + 170)) i=0
  local tok="Authorization: Bearer demo-operator-token-change-me"
  get() { curl -s -o /dev/null --max-time 5 -H "X-User-Id: ${2:-user-$((i % 97))}" "http://$pub$1" || true; }
  while [[ $SECONDS -lt $end ]]; do
    i=$((i + 1))
    get "/shop/catalog.do?page=1"
    get "/shop/productDetail.do?art_nr=ART-1001"
    get "/shop/product.html?art_nr=ART-1002"
    get "/shop/orderStatus.do?ord_no=500001"
    get "/shop/categories.do"
    get "/api/v1/products"
    get "/api/v1/products?page=2"
    get "/api/v1/orders/does-not-exist"
    if [[ $i -eq 1 ]]; then
      # The autopilot drill (the demo's products-v2 plan): start its rollout
      # and make every catalog answer on that path fail, so the first
      # request its 5% step sends to new falls back and the autopilot rolls
      # back (rollout phase, gate checks, rollbacks and the alert get series).
      curl -s -o /dev/null --max-time 5 -X POST -H "$tok" -H 'Content-Type: application/json' \
        -d '{"reason": "dashboards check: autopilot drill"}' \
        "http://$adm/admin/rollouts/products-v2/start" || true
      curl -s -o /dev/null --max-time 5 -X PUT -H 'Content-Type: application/json' \
        -d '{"error_rate": 1, "path_prefix": "/api/v2/products"}' \
        "http://127.0.0.1:8085/admin/faults" || true
    fi
    if [[ $i -le 30 ]]; then
      for u in $(seq 1 20); do get "/api/v2/products" "drill-$i-$u"; done
    fi
    if [[ $i -eq 10 ]]; then
      # Shadow drops: beta users are served by the new catalog and their
      # copies go to the ACL side; with the legacy's product detail slowed
      # down, the bursts below keep the route's shadow pool full and the
      # surplus is dropped (and counted) for the rest of the run.
      curl -s -o /dev/null --max-time 5 -H 'Content-Type: application/json' \
        -d '{"endpoint": "productDetail.do", "latency_ms": 1500}' \
        "http://127.0.0.1:8081/shop/admin/faults" || true
    fi
    if [[ $i -ge 10 ]]; then
      for _ in $(seq 1 24); do
        curl -s -o /dev/null --max-time 5 -H 'X-User-Id: beta-anna' "http://$pub/api/v1/products/ART-1001" &
      done
      wait
    fi
    if [[ $i -eq 20 ]]; then
      curl -s -o "$TMP/canary.json" --max-time 5 -X PUT -H "$tok" -H 'Content-Type: application/json' \
        -d '{"percent": 50, "reason": "dashboards check: canary step"}' \
        "http://$adm/admin/routes/orders/canary" || true
    fi
    if [[ $i -eq 40 ]]; then
      # The outage: every legacy endpoint answers 503 from now on.
      curl -s -o /dev/null --max-time 5 -H 'Content-Type: application/json' \
        -d '{"endpoint": "*", "outage": true, "outage_mode": "503"}' \
        "http://127.0.0.1:8081/shop/admin/faults" || true
    fi
  done
}

if [[ -n "$PUBLIC" ]]; then
  say "driving traffic through $PUBLIC (autopilot drill, canary change, then a legacy outage)"
  drive_traffic "$PUBLIC" "$ADMIN" >"$TMP/traffic.log" 2>&1 &
  PIDS+=($!)
  wait_for "the audit annotation of the canary change" 60 \
    bash -c "curl -fsS -H 'Authorization: Bearer demo-operator-token-change-me' 'http://$ADMIN/admin/annotations' | grep -q '\"time\"'"
  echo "PASS GET /admin/annotations returns the canary change for Grafana"
fi

say "every dashboard and rule expression against Prometheus"
pc_args=(--prometheus "$PROM" --timeout "$(( $(left) > 30 ? $(left) - 10 : 20 ))s")
if "$TMP/promcheck" "${pc_args[@]}"; then
  echo "PASS check.sh ($MODE, $((SECONDS - START))s)"
else
  fail "some expressions returned no series ($MODE); see the FAIL lines above"
fi
