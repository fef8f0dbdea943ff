#!/usr/bin/env bash
# Loopback load benchmark of Ficus (docs/benchmarks.md explains what and why).
#
# One run measures, with the same wrk parameters, in turn:
#   direct  wrk -> upstream                        (the ceiling)
#   bare    wrk -> bare Fiber v2 proxy -> upstream (the framework's own cost)
#   nginx   wrk -> nginx (keepalive upstream) -> upstream (the reference)
#   ficus   wrk -> ficus gateway (flag + canary + breaker + metrics) -> upstream
# then the module's Go benchmarks, and writes the results between the
# `<!-- bench:begin -->` / `<!-- bench:end -->` markers of docs/benchmarks.md.
#
# Usage: bench/run.sh            (or: make bench)
# Environment (all optional):
#   BENCH_DURATION  measured wrk run per target, default 10s
#   BENCH_WARMUP    unmeasured wrk run before it, default 3s
#   BENCH_THREADS   wrk threads, default 2
#   BENCH_CONNS     wrk connections, default 64
#   BENCH_TIMEOUT   wrk per-request timeout, default 2s
#   BENCH_USERS     distinct X-User-Id values, default 1000
#   BENCH_ROUNDS    runs of the whole sequence of targets, default 1; with
#                   more, each target reports its least disturbed round
#   BENCH_LEGS      targets in order, default "direct bare nginx ficus";
#                   also available: nginx-mirror (nginx mirroring every
#                   request to a target that sleeps BENCH_MIRROR_SLEEP, 5s)
#   BENCH_GO        1 (default) runs `go test -bench` over BENCH_GOPKGS
#                   (default ./...) with -benchtime BENCH_GOTIME (default
#                   500ms); 0 skips it
#   BENCH_DOC       results file, default docs/benchmarks.md; empty: print only
#   BENCH_KEEP      1 keeps the temporary directory (configs, raw logs)
#   BENCH_NICE      niceness of wrk and the servers, default -10 as root
#                   (ahead of other work on the machine), else 0
#   FICUS_BIN       use this ficus binary instead of building ./cmd/ficus
#                   (it must run as `FICUS_BIN gateway --config FILE`)
#   BENCH_NOTE      a sentence added to the report (how this run differs)
#   GO              go command, default go
#
# Every process it starts listens on 127.0.0.1 only and is stopped by its PID
# when the script exits, however it exits.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BENCH_DURATION=${BENCH_DURATION:-10s}
BENCH_WARMUP=${BENCH_WARMUP:-3s}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-2s}
BENCH_USERS=${BENCH_USERS:-1000}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_LEGS=${BENCH_LEGS:-direct bare nginx ficus}
BENCH_MIRROR_SLEEP=${BENCH_MIRROR_SLEEP:-5s}
BENCH_GO=${BENCH_GO:-1}
BENCH_GOPKGS=${BENCH_GOPKGS:-./...}
BENCH_GOTIME=${BENCH_GOTIME:-500ms}
BENCH_DOC=${BENCH_DOC-docs/benchmarks.md}
BENCH_KEEP=${BENCH_KEEP:-0}
# Root runs the benchmark's processes ahead of anything else on the machine
# (compilers, other tests), which would otherwise take CPU from one target
# and not the next.
if [[ $(id -u) -eq 0 ]]; then BENCH_NICE=${BENCH_NICE:--10}; else BENCH_NICE=${BENCH_NICE:-0}; fi
NICE=()
if [[ $BENCH_NICE != 0 ]]; then NICE=(nice -n "$BENCH_NICE"); fi
GO=${GO:-go}
export BENCH_USERS

# The path every target is asked for; the upstream answers any path, and the
# Ficus route below matches it.
REQ_PATH=/api/v1/products/BENCH-0001
WRK_ARGS=(-t"$BENCH_THREADS" -c"$BENCH_CONNS" --timeout "$BENCH_TIMEOUT" --latency -s bench/wrk.lua)
# wrk_cmd DURATION URL: the command line as the report shows it.
wrk_cmd() { echo "wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$1 --timeout $BENCH_TIMEOUT --latency -s bench/wrk.lua $2"; }
CLK_TCK=$(getconf CLK_TCK)
# nginx lives in /usr/sbin, which a non-root PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

BENCH_NAME=bench
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# machine_busy_ticks prints the clock ticks all CPUs spent running
# processes (user, nice, system) or taken by the hypervisor (steal). Interrupt
# time is left out: loopback traffic is processed there, charged to no
# process, and would otherwise read as other load.
machine_busy_ticks() {
	local _ user nice system steal
	read -r _ user nice system _ _ _ _ steal _ </proc/stat
	echo $((user + nice + system + steal))
}

# machine_idle_ticks prints the clock ticks all CPUs spent idle or waiting
# for I/O.
machine_idle_ticks() {
	local _ idle iowait
	read -r _ _ _ _ idle iowait _ </proc/stat
	echo $((idle + iowait))
}

# peak_rss_kib PID... sums VmHWM (peak resident set) of the processes.
peak_rss_kib() {
	local pid total=0 v
	for pid in "$@"; do
		v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# ---------------------------------------------------------------- targets
#
# A target is a function start_<leg> (dashes become underscores) that starts what the leg needs and sets
#   LEG_URL   the URL wrk loads
#   LEG_PIDS  the processes whose CPU and RSS are the proxy's (empty: direct)
#   LEG_AUX   other processes of the leg (a shadow target), not "other load"
#   LEG_LABEL the name in the results table
#   LEG_STOP  PIDs to stop after the leg
#   LEG_AFTER a function to call after measuring, while the leg still runs
# or sets LEG_SKIP to why the leg cannot run. Adding a leg (e.g. Ficus with
# shadowing) is one more start_<leg> function and its name in BENCH_LEGS.

UP_ADDR=
UP_PID=

start_direct() {
	LEG_LABEL="direct (upstream)"
	LEG_URL="http://$UP_ADDR$REQ_PATH"
}

start_bare() {
	LEG_LABEL="bare Fiber v2 proxy"
	rm -f "$WORK/bareproxy.addr" # a previous round's
	start bareproxy "$WORK/bin/bareproxy" -listen 127.0.0.1:0 -addr-file "$WORK/bareproxy.addr" -upstream "http://$UP_ADDR"
	LEG_STOP=("$PID")
	local addr
	addr=$(wait_file "$WORK/bareproxy.addr" "$PID" bareproxy) || {
		LEG_SKIP="the bare proxy did not start"
		return 0
	}
	LEG_URL="http://$addr$REQ_PATH"
	LEG_PIDS=("$PID")
}

# run_nginx NAME LABEL [MIRROR_ADDR]
run_nginx() {
	local port
	port=$(free_port)
	LEG_LABEL=$2
	nginx_conf "$1" "$port" "${3:-}"
	nginx -t -q -p "$WORK/$1" -c "$WORK/$1/nginx.conf" >"$WORK/$1-test.log" 2>&1 || {
		LEG_SKIP="nginx rejected its config: $(head -c 300 "$WORK/$1-test.log")"
		return 0
	}
	start "$1" nginx -p "$WORK/$1" -c "$WORK/$1/nginx.conf" -g 'daemon off;'
	LEG_STOP=(${LEG_STOP[@]+"${LEG_STOP[@]}"} "$PID")
	LEG_URL="http://127.0.0.1:$port$REQ_PATH"
	wait_http "$LEG_URL" "$PID" "$1" || {
		LEG_SKIP="nginx did not start"
		return 0
	}
	mapfile -t LEG_PIDS < <(family "$PID")
}

start_nginx() { run_nginx nginx "nginx $NGINX_VERSION"; }

start_nginx_mirror() {
	rm -f "$WORK/mirror.addr"
	start mirror-target "$WORK/bin/upstream" -listen 127.0.0.1:0 -addr-file "$WORK/mirror.addr" -sleep "$BENCH_MIRROR_SLEEP"
	local mpid=$PID addr
	LEG_STOP=("$mpid")
	addr=$(wait_file "$WORK/mirror.addr" "$mpid" mirror-target) || {
		LEG_SKIP="the slow mirror target did not start"
		return 0
	}
	run_nginx nginx-mirror "nginx, mirror 100% to a ${BENCH_MIRROR_SLEEP} target" "$addr"
	LEG_AUX=("$mpid")
}

FICUS_READY=
FICUS_WHY=

# build_ficus builds ./cmd/ficus unless FICUS_BIN names a binary, and checks
# it has the gateway command; sets FICUS_WHY when it cannot be used.
build_ficus() {
	if [[ -n ${FICUS_BIN:-} ]]; then
		cp "$FICUS_BIN" "$WORK/bin/ficus"
	elif ! "$GO" build -o "$WORK/bin/ficus" ./cmd/ficus >"$WORK/ficus-build.log" 2>&1; then
		FICUS_WHY="./cmd/ficus does not build: $({ grep -m1 -v '^#' "$WORK/ficus-build.log" || true; } | cut -c1-200)"
		return 0
	fi
	if ! "$WORK/bin/ficus" gateway --help >"$WORK/ficus-help.log" 2>&1; then
		FICUS_WHY="the ficus binary has no working 'gateway' command yet ($(sed -n '1s/^\(.\{1,200\}\).*/\1/p' "$WORK/ficus-help.log"))"
		return 0
	fi
	FICUS_READY=1
}

# ficus_conf PORT ADMIN_PORT writes the gateway config of the run: one route
# with everything a migrating route has on its hot path.
ficus_conf() {
	cat >"$WORK/flags.json" <<'EOF'
{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "bench-new-catalog": {
      "state": "ENABLED",
      "variants": { "legacy": "legacy", "new": "new", "canary": "canary" },
      "defaultVariant": "canary",
      "targeting": {
        "if": [
          { "in": [ { "var": "targetingKey" }, [ "bench-user-1", "bench-user-2" ] ] },
          "new",
          null
        ]
      }
    }
  }
}
EOF
	cat >"$WORK/ficus.yaml" <<EOF
# Generated by bench/run.sh. Both upstream names point at the one benchmark
# upstream, so every leg is served by the same backend process.
listen: 127.0.0.1:$1
admin:
  listen: 127.0.0.1:$2
  auditDB: $WORK/ficus-audit.db
limits:
  shutdownTimeout: 2s
upstreams:
  legacy:
    url: http://$UP_ADDR
    kind: legacy
  up2:
    url: http://$UP_ADDR
    kind: new
flags:
  file: $WORK/flags.json
routes:
  # A flag (two beta users forced to new; everyone else gets the variant
  # "canary", which is not a backend, so the canary decides), then a 50%
  # sticky canary; breakers and metrics are on by default.
  - name: bench
    path: /api/v1/products/*
    methods: [GET, HEAD]
    new: up2
    canary: 50
    flag: bench-new-catalog
EOF
}

start_ficus() {
	LEG_LABEL="Ficus (flag + canary + breaker + metrics)"
	if [[ -z $FICUS_READY ]]; then
		LEG_SKIP=$FICUS_WHY
		return 0
	fi
	local port admin
	port=$(free_port)
	admin=$(free_port)
	while [[ $admin == "$port" ]]; do admin=$(free_port); done
	ficus_conf "$port" "$admin"
	# --check validates without starting; 2 is a usage error (a binary
	# without --check), which is left to the start below to reveal.
	local rc=0
	"$WORK/bin/ficus" gateway --config "$WORK/ficus.yaml" --check >"$WORK/ficus-check.log" 2>&1 || rc=$?
	if ((rc == 1)); then
		LEG_SKIP="ficus rejects the benchmark's config: $(tr '\n' ' ' <"$WORK/ficus-check.log" | cut -c1-300)"
		return 0
	fi
	# Warnings and errors only: nginx runs with access_log off.
	start ficus "$WORK/bin/ficus" gateway --config "$WORK/ficus.yaml" --log-level warn
	LEG_STOP=("$PID")
	LEG_URL="http://127.0.0.1:$port$REQ_PATH"
	wait_http "$LEG_URL" "$PID" ficus || {
		LEG_SKIP="the gateway did not start (see the log above)"
		return 0
	}
	LEG_PIDS=("$PID")
	LEG_AFTER=ficus_decisions
	FICUS_ADMIN=$admin
}

# ficus_decisions notes how the route decided during the leg, from the
# gateway's own metrics: proof that the flag and the canary were on the path.
ficus_decisions() {
	local m
	m=$(curl -s --max-time 5 "http://127.0.0.1:$FICUS_ADMIN/metrics" || true)
	m=$(awk '/^ficus_decisions_total\{/ && /route="bench"/ && $NF > 0 {
		b = $0; sub(/.*backend="/, "", b); sub(/".*/, "", b)
		r = $0; sub(/.*reason="/, "", r); sub(/".*/, "", r)
		out = out (out == "" ? "" : ", ") r " -> " b ": " $NF
	} END { print out }' <<<"$m")
	if [[ -n $m ]]; then
		NOTES+=("Ficus route \`bench\` decisions during the run (ficus_decisions_total, reason -> backend): $m.")
	fi
}

# ---------------------------------------------------------------- measuring

RESULTS= # TSV: leg label rps p50us p99us errors cpu100k upcpu100k rsskib other% allcpu100k idle%
SKIPPED=()
NOTES=()

# measure LEG: warm up, then one measured wrk run with CPU and RSS sampled.
measure() {
	local leg=$1 raw="$WORK/wrk-$1.txt" line
	local code
	code=$(curl -s -o "$WORK/$leg.body" -w '%{http_code}' --max-time 5 -H 'X-User-Id: bench-user-1' "$LEG_URL" || true)
	if [[ $code != 200 ]]; then
		SKIPPED+=("$LEG_LABEL: the first request got status ${code:-none}, not 200")
		return 0
	fi
	${NICE[@]+"${NICE[@]}"} wrk "${WRK_ARGS[@]}" -d"$BENCH_WARMUP" "$LEG_URL" >"$WORK/wrk-$leg-warmup.txt" 2>&1 || true
	local p0 u0 a0 m0 i0 t0 p1 u1 a1 m1 i1 t1
	p0=$(cpu_ticks ${LEG_PIDS[@]+"${LEG_PIDS[@]}"})
	u0=$(cpu_ticks "$UP_PID")
	a0=$(cpu_ticks ${LEG_AUX[@]+"${LEG_AUX[@]}"})
	m0=$(machine_busy_ticks)
	i0=$(machine_idle_ticks)
	t0=$EPOCHREALTIME
	# `times` must run in this shell (not in $(...)) to see wrk, its child.
	times >"$WORK/times.0"
	if ! ${NICE[@]+"${NICE[@]}"} wrk "${WRK_ARGS[@]}" -d"$BENCH_DURATION" "$LEG_URL" >"$raw" 2>&1; then
		SKIPPED+=("$LEG_LABEL: wrk failed: $(tail -n1 "$raw")")
		return 0
	fi
	times >"$WORK/times.1"
	t1=$EPOCHREALTIME
	m1=$(machine_busy_ticks)
	i1=$(machine_idle_ticks)
	p1=$(cpu_ticks ${LEG_PIDS[@]+"${LEG_PIDS[@]}"})
	u1=$(cpu_ticks "$UP_PID")
	a1=$(cpu_ticks ${LEG_AUX[@]+"${LEG_AUX[@]}"})
	line=$(grep -m1 '^BENCH_RESULT' "$raw") || {
		SKIPPED+=("$LEG_LABEL: no result line in the wrk output")
		return 0
	}
	local n dur p50 p99 errs rss=0
	n=$(field requests "$line")
	dur=$(field duration_us "$line")
	p50=$(field p50_us "$line")
	p99=$(field p99_us "$line")
	errs=$(($(field connect_errors "$line") + $(field read_errors "$line") + $(field write_errors "$line") + $(field status_errors "$line") + $(field timeouts "$line")))
	if ((${#LEG_PIDS[@]} > 0)); then
		rss=$(peak_rss_kib "${LEG_PIDS[@]}")
	fi
	awk -v leg="$leg" -v label="$LEG_LABEL" -v n="$n" -v dur="$dur" -v p50="$p50" -v p99="$p99" -v errs="$errs" \
		-v dp=$((p1 - p0)) -v du=$((u1 - u0)) -v da=$((a1 - a0)) -v dm=$((m1 - m0)) -v di=$((i1 - i0)) -v dw="$(wrk_cpu_seconds)" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
		-v tck="$CLK_TCK" -v cpus="$(nproc)" -v rss="$rss" -v has_proxy=${#LEG_PIDS[@]} 'BEGIN {
		rps = n / (dur / 1e6)
		pc = has_proxy ? sprintf("%.2f", dp / tck * 100000 / n) : "-"
		uc = sprintf("%.2f", du / tck * 100000 / n)
		# CPU used by processes outside the test (other builds, daemons)
		# while wrk ran, as a share of the whole machine over that window.
		other = (dm - dp - du - da) / tck - dw
		if (other < 0) other = 0
		other = 100 * other / (wall * cpus)
		if (other > 100) other = 100
		# Everything the request cost on this machine: wrk, proxy, upstream
		# (and a shadow target). On saturated shared CPUs, requests/s follows
		# its inverse, and it is far less disturbed by other load.
		tc = sprintf("%.2f", ((dp + du + da) / tck + dw) * 100000 / n)
		# Idle CPU while a closed-loop load saturates the target means the
		# target waits (locks, timers, channels) rather than computes.
		idle = 100 * di / tck / (wall * cpus)
		if (idle > 100) idle = 100
		printf "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%.0f\n", leg, label, rps, p50, p99, errs, pc, uc, (has_proxy ? rss : "-"), other, tc, idle
	}' >>"$WORK/rounds.tsv"
	log "      $(awk -F'\t' 'END {printf "%s req/s, p50 %.2f ms, p99 %.2f ms, errors %s, proxy CPU %s s/100k, other load %s%%, idle %s%%", $3, $4/1000, $5/1000, $6, $7, $10, $12}' "$WORK/rounds.tsv")"
}

# ---------------------------------------------------------------- report

# least_disturbed ROUNDS keeps, per target and in first-seen order, the
# round measured with the least other load: on a shared machine that round
# is the one closest to what the target can do.
least_disturbed() {
	awk -F'\t' '
		!($1 in best) { order[++n] = $1 }
		!($1 in best) || $10 + 0 < other[$1] { best[$1] = $0; other[$1] = $10 + 0 }
		END { for (i = 1; i <= n; i++) print best[order[i]] }' "$1"
}

# results_table RESULTS prints the per-target table, then a warning naming
# the targets measured while other processes used more than BENCH_NOISY
# percent (default 10) of the machine, or that answered errors.
results_table() {
	awk -F'\t' -v noisy="${BENCH_NOISY:-10}" '
		BEGIN {
			print "| target | requests/s | p50 ms | p99 ms | errors | proxy CPU s / 100k req | upstream CPU s / 100k req | all CPU s / 100k req | proxy peak RSS MiB | other load % | idle % |"
			print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		}
		{
			rss = ($9 == "-") ? "-" : sprintf("%.1f", $9 / 1024)
			printf "| %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $4 / 1000, $5 / 1000, $6, $7, $8, ($11 == "" ? "-" : $11), rss, $10, ($12 == "" ? "-" : $12)
			if ($10 + 0 > noisy + 0) loud = loud (loud == "" ? "" : ", ") $2 " (" $10 "%)"
			if ($6 + 0 > 0) bad = bad (bad == "" ? "" : ", ") $2 " (" $6 ")"
		}
		END {
			if (loud != "") printf "\n**Noisy:** other processes used more than %s%% of the machine while measuring %s; rerun on a quiet machine before comparing.\n", noisy, loud
			if (bad != "") printf "\n**Errors:** %s answered errors or timed out; their requests/s are not comparable.\n", bad
		}' "$1"
}

# ratio_rows RESULTS prints the ratios of requests/s, p99 and proxy CPU per
# request between the legs measured (nothing when no pair was).
ratio_rows() {
	awk -F'\t' '
		{ rps[$1] = $3; p99[$1] = $5; cpu[$1] = $7; all[$1] = $11 }
		function row(a, b, text, target,   r, e, line) {
			if (!(a in rps) || !(b in rps) || rps[b] <= 0) return
			r = rps[a] / rps[b]
			line = sprintf("| %s | %.2f | %s |", text, r, (p99[b] > 0 ? sprintf("%.2f", p99[a] / p99[b]) : "-"))
			if (cpu[a] != "-" && cpu[b] != "-" && cpu[b] > 0) line = line sprintf(" %.2f |", cpu[a] / cpu[b])
			else line = line " - |"
			# requests per CPU-second of a over those of b
			e = (all[a] > 0 && all[b] > 0) ? all[b] / all[a] : -1
			line = line (e < 0 ? " - |" : sprintf(" %.2f |", e))
			if (target != "") {
				line = line sprintf(" ≥ %s: %s by requests/s", target, (r >= target + 0 ? "met" : "not met"))
				if (e >= 0) line = line sprintf(", %s per CPU-second", (e >= target + 0 ? "met" : "not met"))
				line = line " |"
			} else line = line " |"
			rows[++n] = line
		}
		END {
			row("ficus", "bare", "Ficus / bare Fiber", "0.85")
			row("ficus", "nginx", "Ficus / nginx", "")
			row("bare", "nginx", "bare Fiber / nginx", "")
			row("bare", "direct", "bare Fiber / direct", "")
			row("nginx", "direct", "nginx / direct", "")
			row("ficus", "direct", "Ficus / direct", "")
			row("nginx-mirror", "nginx", "nginx mirroring 100% / nginx", "")
			if (n == 0) exit
			print "| ratio | requests/s | p99 | proxy CPU per request | requests per CPU-second | target |"
			print "|---|---:|---:|---:|---:|---|"
			for (i = 1; i <= n; i++) print rows[i]
		}' "$1"
}

# write_doc REPORT DOC puts REPORT between DOC's bench:begin / bench:end
# marker lines, keeping everything around them; a DOC without both markers
# gets a "Results" section with them appended first.
write_doc() {
	local report=$1 doc=$2
	if [[ ! -f $doc ]] || ! grep -q '^<!-- bench:begin -->' "$doc" || ! grep -q '^<!-- bench:end -->' "$doc"; then
		{
			[[ -s $doc ]] && echo
			echo "## Results"
			echo
			echo "<!-- bench:begin -->"
			echo "<!-- bench:end -->"
		} >>"$doc"
	fi
	awk -v report="$report" '
		/^<!-- bench:begin -->/ { print; while ((getline l < report) > 0) print l; skip = 1; next }
		/^<!-- bench:end -->/ { skip = 0 }
		!skip { print }' "$doc" >"$doc.tmp"
	# cat, not mv: the file keeps its owner and mode.
	cat "$doc.tmp" >"$doc"
	rm -f "$doc.tmp"
}

# ---------------------------------------------------------------- main

main() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/ficus-bench.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# nginx's workers run as an unprivileged user when started as root: they
	# must be able to traverse into their prefix.
	chmod 0711 "$WORK"
	mkdir -p "$WORK/bin"
	RESULTS="$WORK/results.tsv"
	: >"$WORK/rounds.tsv"

	need_pkg wrk wrk
	need_pkg nginx nginx-light
	need_pkg curl curl
	NGINX_VERSION=$(nginx -v 2>&1 | sed 's/^nginx version: nginx\///')
	WRK_VERSION=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')
	GO_VERSION=$("$GO" env GOVERSION)

	read -r -a LEGS <<<"$BENCH_LEGS"
	for leg in "${LEGS[@]}"; do
		declare -F "start_${leg//-/_}" >/dev/null || die "unknown leg '$leg' in BENCH_LEGS (known: direct bare nginx ficus nginx-mirror)"
	done
	[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer, got '$BENCH_ROUNDS'"
	steps=$((${#LEGS[@]} * BENCH_ROUNDS))
	[[ $BENCH_GO == 1 ]] && steps=$((steps + 1))

	log "==> building the benchmark programs into $WORK/bin"
	"$GO" build -o "$WORK/bin/upstream" ./bench/upstream
	"$GO" build -o "$WORK/bin/bareproxy" ./bench/bareproxy
	if [[ " ${LEGS[*]} " == *" ficus "* ]]; then
		log "==> building ./cmd/ficus"
		build_ficus
		[[ -n $FICUS_READY ]] || log "    Ficus leg will be skipped: $FICUS_WHY"
	fi

	start upstream "$WORK/bin/upstream" -listen 127.0.0.1:0 -addr-file "$WORK/upstream.addr"
	UP_PID=$PID
	UP_ADDR=$(wait_file "$WORK/upstream.addr" "$UP_PID" upstream) || die "the upstream did not start"
	wait_http "http://$UP_ADDR/" "$UP_PID" upstream || die "the upstream does not answer"
	log "==> upstream on $UP_ADDR (PID $UP_PID)"

	step=0
	for ((round = 1; round <= BENCH_ROUNDS; round++)); do
		for leg in "${LEGS[@]}"; do
			step=$((step + 1))
			rtag=''
			((BENCH_ROUNDS == 1)) || rtag=" (round $round of $BENCH_ROUNDS)"
			LEG_URL='' LEG_SKIP='' LEG_LABEL=$leg
			LEG_PIDS=()
			LEG_AUX=()
			LEG_AFTER=''
			LEG_STOP=()
			log "[$step/$steps] $leg$rtag: starting"
			"start_${leg//-/_}"
			if [[ -n $LEG_SKIP ]]; then
				log "[$step/$steps] $leg: skipped: $LEG_SKIP"
				((round > 1)) || SKIPPED+=("$LEG_LABEL: $LEG_SKIP")
			else
				log "[$step/$steps] $leg$rtag: warming up for $BENCH_WARMUP, then running wrk for $BENCH_DURATION…"
				measure "$leg"
				if [[ -n $LEG_AFTER ]] && ((round == 1)); then "$LEG_AFTER"; fi
			fi
			for pid in ${LEG_STOP[@]+"${LEG_STOP[@]}"}; do stop_started "$pid"; done
		done
	done
	least_disturbed "$WORK/rounds.tsv" >"$RESULTS"

	GO_TABLE=
	if [[ $BENCH_GO == 1 ]]; then
		step=$((step + 1))
		log "[$step/$steps] go benchmarks: go test -run='^\$' -bench=. -benchmem -benchtime=$BENCH_GOTIME $BENCH_GOPKGS…"
		set +e
		read -r -a gopkgs <<<"$BENCH_GOPKGS"
		"$GO" test -run='^$' -bench=. -benchmem -benchtime="$BENCH_GOTIME" -count=1 "${gopkgs[@]}" >"$WORK/go-bench.txt" 2>&1
		go_rc=$?
		set -e
		cp "$WORK/go-bench.txt" bench-go.txt
		GO_TABLE=$(awk -v rc="$go_rc" '
			/^pkg: / { pkg = $2; sub(/^github.com\/ficus-gw\/ficus\//, "", pkg) }
			/^Benchmark/ && NF >= 4 {
				name = $1; sub(/-[0-9]+$/, "", name)
				ns = "-"; b = "-"; al = "-"; other = ""
				for (i = 3; i < NF; i += 2) {
					if ($(i+1) == "ns/op") ns = $i
					else if ($(i+1) == "B/op") b = $i
					else if ($(i+1) == "allocs/op") al = $i
					else other = other (other == "" ? "" : ", ") $i " " $(i+1)
				}
				rows[++n] = sprintf("| %s | %s | %s | %s | %s | %s |", pkg, name, ns, b, al, (other == "" ? "" : other))
			}
			/^--- FAIL/ || /^FAIL\t/ { fails = fails "\n- `" $0 "`" }
			END {
				if (n == 0) { print "No Go benchmark ran."; }
				else {
					print "| package | benchmark | ns/op | B/op | allocs/op | other |"
					print "|---|---|---:|---:|---:|---|"
					for (i = 1; i <= n; i++) print rows[i]
				}
				if (rc != 0) print "\n`go test` exited with status " rc "; failures:" fails
			}' "$WORK/go-bench.txt")
		log "      $(grep -c '^Benchmark' "$WORK/go-bench.txt" || true) benchmark lines, go test status $go_rc (raw output in bench-go.txt)"
	fi

	CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	COMMIT=$(git describe --always --dirty 2>/dev/null || echo unknown)
	REPORT="$WORK/report.md"
	{
		echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`."
		echo
		echo "- Machine: $(nproc) CPUs ($CPU_MODEL), $(awk '/^MemTotal:/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
		echo "- Go ${GO_VERSION#go}, wrk $WRK_VERSION, nginx $NGINX_VERSION"
		echo "- Command: \`BENCH_DURATION=$BENCH_DURATION BENCH_ROUNDS=$BENCH_ROUNDS BENCH_LEGS=\"${LEGS[*]}\" bench/run.sh\`"
		if ((BENCH_ROUNDS > 1)); then
			echo "- The targets ran in $BENCH_ROUNDS interleaved rounds; each row is that target's round with the least other load."
		fi
		echo "- Load, the same for every target: \`$(wrk_cmd "$BENCH_DURATION" "http://127.0.0.1:PORT$REQ_PATH")\`"
		echo "  after a $BENCH_WARMUP warm-up with the same parameters; $BENCH_USERS distinct \`X-User-Id\` values."
		echo "- wrk, the proxy and the upstream share the $(nproc) CPUs: compare ratios, not absolute numbers."
		if [[ $BENCH_NICE != 0 ]]; then
			echo "- wrk and the servers ran at niceness $BENCH_NICE, ahead of other work on the machine."
		fi
		echo
		results_table "$RESULTS"
		echo
		ratio_rows "$RESULTS"
		if [[ -n ${BENCH_NOTE:-} ]]; then
			echo
			echo "Note: $BENCH_NOTE"
		fi
		if ((${#NOTES[@]} > 0)); then
			echo
			for s in "${NOTES[@]}"; do echo "$s"; done
		fi
		if ((${#SKIPPED[@]} > 0)); then
			echo
			echo "Not measured in this run:"
			for s in "${SKIPPED[@]}"; do echo "- $s"; done
		fi
		if [[ $BENCH_GO == 1 ]]; then
			echo
			echo "Go benchmarks (\`go test -run='^\$' -bench=. -benchmem -benchtime=$BENCH_GOTIME -count=1 $BENCH_GOPKGS\`):"
			echo
			echo "$GO_TABLE"
		fi
	} >"$REPORT"

	echo
	cat "$REPORT"

	if [[ -n $BENCH_DOC ]]; then
		write_doc "$REPORT" "$BENCH_DOC"
		log "==> results written to $BENCH_DOC"
	fi
}

# Sourcing the file (the config tests do) defines the functions only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
