#!/usr/bin/env bash
# Loopback load benchmark of Ficus (docs/benchmarks.md explains what and why).
#
# One run measures, with the same wrk parameters, in turn and for
# BENCH_ROUNDS interleaved rounds (round 1: direct bare bare-prefork nginx
# ficus ficus-stream, round 2:
# the same again, ...), so the legs of one round run minutes apart at most:
#   direct  wrk -> upstream                        (the ceiling)
#   bare    wrk -> bare Fiber v2 proxy -> upstream (the framework's own cost)
#   bare-prefork  the same in Fiber's Prefork mode, a process per CPU
#           (nginx's process model on the framework)
#   nginx   wrk -> nginx (keepalive upstream) -> upstream (the reference)
#   ficus   wrk -> ficus gateway (flag + canary + breaker + metrics) -> upstream,
#           the route reading answers whole (bufferResponses: true)
#   ficus-stream  the same route with answers streamed (the route default)
# then the module's Go benchmarks, and writes the results (per-target
# medians, medians of per-round ratios, every round) between the
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
#   BENCH_ROUNDS    runs of the whole sequence of targets, interleaved,
#                   default 5. Each target reports its medians over the
#                   rounds, each ratio the median of its per-round ratios
#   BENCH_NOISY     other load, in percent of the machine, above which a
#                   round is left out of the medians, default 10
#   BENCH_LEGS      targets in order, default "direct bare bare-prefork
#                   nginx ficus ficus-stream";
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
#   BENCH_RATE      fixed-rate latency leg: requests/s sent by bench/loadgen
#                   (an open loop) to each of BENCH_RATE_LEGS after its wrk
#                   run, default 4000; 0 skips it
#   BENCH_RATE_DURATION  its length, default 10s
#   BENCH_RATE_LEGS legs it runs on, default "direct bare nginx ficus"
#   BENCH_COUNT_DURATION  counted leg: after the fixed-rate leg, a further wrk
#                   run of this length on each of BENCH_COUNT_LEGS with
#                   `perf stat` counting the proxy's system calls, context
#                   switches and CPU time (task-clock), each divided by the
#                   requests wrk counted; default 6s, 0 skips it (and so
#                   does a machine where perf cannot count them)
#   BENCH_COUNT_LEGS legs it runs on, default "bare bare-prefork nginx ficus"
#   BENCH_RSS_CONNS peak RSS is also read after a BENCH_RSS_DURATION (5s)
#                   wrk run with this many connections, in round 1, on the
#                   proxies; default 256, 0 skips it
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
BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_LEGS=${BENCH_LEGS:-direct bare bare-prefork nginx ficus ficus-stream}
BENCH_MIRROR_SLEEP=${BENCH_MIRROR_SLEEP:-5s}
BENCH_GO=${BENCH_GO:-1}
BENCH_GOPKGS=${BENCH_GOPKGS:-./...}
BENCH_GOTIME=${BENCH_GOTIME:-500ms}
BENCH_DOC=${BENCH_DOC-docs/benchmarks.md}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_RATE=${BENCH_RATE:-4000}
BENCH_RATE_DURATION=${BENCH_RATE_DURATION:-10s}
BENCH_RATE_LEGS=${BENCH_RATE_LEGS:-direct bare nginx ficus}
BENCH_COUNT_DURATION=${BENCH_COUNT_DURATION:-6s}
BENCH_COUNT_LEGS=${BENCH_COUNT_LEGS:-bare bare-prefork nginx ficus}
BENCH_RSS_CONNS=${BENCH_RSS_CONNS:-256}
BENCH_RSS_DURATION=${BENCH_RSS_DURATION:-5s}
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

# start_bare_prefork is the same bare proxy in Fiber's Prefork mode: one
# child process per CPU, each with GOMAXPROCS 1, sharing the port through
# SO_REUSEPORT, as nginx's workers do. It answers whether the framework
# gets nearer nginx with nginx's process model (the parent only waits, and
# stops its children when it is stopped).
start_bare_prefork() {
	LEG_LABEL="bare Fiber v2 proxy, Prefork (a process per CPU)"
	local port
	port=$(free_port)
	start bareproxy-prefork "$WORK/bin/bareproxy" -prefork -listen "127.0.0.1:$port" -upstream "http://$UP_ADDR"
	LEG_STOP=("$PID")
	LEG_URL="http://127.0.0.1:$port$REQ_PATH"
	wait_http "$LEG_URL" "$PID" bareproxy-prefork || {
		LEG_SKIP="the preforked bare proxy did not start"
		return 0
	}
	mapfile -t LEG_PIDS < <(family "$PID")
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

# ficus_conf PORT ADMIN_PORT [BUFFER] writes the gateway config of the run:
# one route with everything a migrating route has on its hot path. BUFFER
# (default true) is the route's bufferResponses: true is what docs/
# configuration.md recommends for an API route with small answers, false is
# the route default (answers may stream).
ficus_conf() {
	local buffer=${3:-true}
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
    bufferResponses: $buffer
EOF
}

start_ficus() {
	LEG_LABEL="Ficus (flag + canary + breaker + metrics)"
	ficus_leg true
}

# start_ficus_stream is the same route with bufferResponses left at its
# default: every answer goes through fasthttp's stream bookkeeping.
start_ficus_stream() {
	LEG_LABEL="Ficus, streaming answers (route default)"
	ficus_leg false
}

# ficus_leg BUFFER starts the gateway with ficus_conf's route.
ficus_leg() {
	if [[ -z $FICUS_READY ]]; then
		LEG_SKIP=$FICUS_WHY
		return 0
	fi
	local port admin
	port=$(free_port)
	admin=$(free_port)
	while [[ $admin == "$port" ]]; do admin=$(free_port); done
	ficus_conf "$port" "$admin" "$1"
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
	if [[ $1 == true ]]; then
		LEG_AFTER=ficus_decisions
	fi
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
		local when="during the run"
		((BENCH_ROUNDS == 1)) || when="during round 1"
		NOTES+=("Ficus route \`bench\` decisions $when (ficus_decisions_total, reason -> backend): $m.")
	fi
}

# ---------------------------------------------------------------- measuring

# rounds.tsv has one line per measured leg and round:
#   leg label rps p50us p99us errors cpu100k upcpu100k rsskib other% allcpu100k idle% round
# RESULTS (target_medians) has one line per target: the same first twelve
# columns, then how many rounds it used and what the others were like.
RESULTS=
SKIPPED=()
NOTES=()

# measure LEG ROUND: warm up, then one measured wrk run with CPU and RSS
# sampled; appends a line to rounds.tsv.
measure() {
	local leg=$1 round=$2 raw="$WORK/wrk-$1-$2.txt" line what=$LEG_LABEL
	((BENCH_ROUNDS == 1)) || what="$LEG_LABEL, round $round"
	local code
	code=$(curl -s -o "$WORK/$leg.body" -w '%{http_code}' --max-time 5 -H 'X-User-Id: bench-user-1' "$LEG_URL" || true)
	if [[ $code != 200 ]]; then
		SKIPPED+=("$what: the first request got status ${code:-none}, not 200")
		return 0
	fi
	${NICE[@]+"${NICE[@]}"} wrk "${WRK_ARGS[@]}" -d"$BENCH_WARMUP" "$LEG_URL" >"$WORK/wrk-$leg-$round-warmup.txt" 2>&1 || true
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
		SKIPPED+=("$what: wrk failed: $(tail -n1 "$raw")")
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
		SKIPPED+=("$what: no result line in the wrk output")
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
		-v tck="$CLK_TCK" -v cpus="$(nproc)" -v rss="$rss" -v has_proxy=${#LEG_PIDS[@]} -v round="$round" 'BEGIN {
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
		printf "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%.0f\t%d\n", leg, label, rps, p50, p99, errs, pc, uc, (has_proxy ? rss : "-"), other, tc, idle, round
	}' >>"$WORK/rounds.tsv"
	log "      $(awk -F'\t' 'END {printf "%s req/s, p50 %.2f ms, p99 %.2f ms, errors %s, proxy CPU %s s/100k, other load %s%%, idle %s%%", $3, $4/1000, $5/1000, $6, $7, $10, $12}' "$WORK/rounds.tsv")"
}

# pss_kib FIELD PID... sums FIELD (Pss_Anon or Pss_File) of the processes'
# smaps_rollup: their resident memory now, shared pages divided among the
# processes that map them (nginx's workers share its binary).
pss_kib() {
	local field=$1 pid total=0 v
	shift
	for pid in "$@"; do
		v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
		total=$((total + ${v:-0}))
	done
	echo "$total"
}

# measure_rss LEG: the proxy's peak RSS after its measured run (at
# BENCH_CONNS), then after a short wrk run at BENCH_RSS_CONNS connections,
# and what is resident right after that run, split into anonymous memory
# (heap, stacks, buffers) and pages mapped from files (the executable's
# code and read-only data, shared libraries). Appends
# "leg label rss_kib_at_conns rss_kib_at_rss_conns anon_pss_kib file_pss_kib"
# to rss.tsv.
measure_rss() {
	local before after
	before=$(peak_rss_kib "${LEG_PIDS[@]}")
	${NICE[@]+"${NICE[@]}"} wrk -t"$BENCH_THREADS" -c"$BENCH_RSS_CONNS" --timeout "$BENCH_TIMEOUT" -s bench/wrk.lua -d"$BENCH_RSS_DURATION" "$LEG_URL" >"$WORK/wrk-$1-rss.txt" 2>&1 || true
	after=$(peak_rss_kib "${LEG_PIDS[@]}")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$LEG_LABEL" "$before" "$after" \
		"$(pss_kib Pss_Anon "${LEG_PIDS[@]}")" "$(pss_kib Pss_File "${LEG_PIDS[@]}")" >>"$WORK/rss.tsv"
}

# rss_rows RSS CONNS RSS_CONNS prints the peak-RSS table and, for Ficus,
# the verdict on the 32 MiB target at CONNS connections.
rss_rows() {
	awk -F'\t' -v c="$2" -v c2="$3" '
		BEGIN {
			printf "| target | peak RSS MiB, %s connections | peak RSS MiB, %s connections | resident after: anonymous MiB (PSS) | resident after: mapped from files MiB (PSS) |\n", c, c2
			print "|---|---:|---:|---:|---:|"
		}
		{
			printf "| %s | %.1f | %.1f | %s | %s |\n", $2, $3 / 1024, $4 / 1024, ($5 == "" ? "-" : sprintf("%.1f", $5 / 1024)), ($6 == "" ? "-" : sprintf("%.1f", $6 / 1024))
			if ($1 == "ficus") { f = $3 / 1024; have = 1; fa = $5; ff = $6 }
		}
		END {
			if (!have) exit
			printf "\nFicus peak RSS at %s connections: %.1f MiB (target ≤ 32 MiB: %s).", c, f, (f <= 32 ? "met" : "not met")
			if (ff != "") printf " Of what stayed resident after %s connections, %.1f MiB was anonymous memory and %.1f MiB pages of the executable and libraries (clean, shared by every process of the same binary, reclaimable).", c2, fa / 1024, ff / 1024
			printf "\n"
		}' "$1"
}

# COUNT_EVENTS are what the counted leg asks perf stat for.
COUNT_EVENTS=raw_syscalls:sys_enter,sched:sched_switch,task-clock

# perf_counts FILE prints "syscalls switches task_clock_ms" from the output
# of `perf stat -x,` (value,unit,event,...), or fails when one of the
# three is missing or was not counted.
perf_counts() {
	awk -F, '
		$3 ~ /raw_syscalls:sys_enter/ { s = $1 }
		$3 ~ /sched:sched_switch/ { c = $1 }
		$3 ~ /task-clock/ { t = $1 }
		END {
			if (s !~ /^[0-9.]+$/ || c !~ /^[0-9.]+$/ || t !~ /^[0-9.]+$/) exit 1
			print s, c, t
		}' "$1"
}

# count_ok says whether perf stat can count COUNT_EVENTS on this machine
# (it needs perf, and root or a permissive kernel.perf_event_paranoid).
count_ok() {
	command -v perf >/dev/null 2>&1 || return 1
	perf stat -x, -e "$COUNT_EVENTS" -o "$WORK/count-probe.perf" -- true >/dev/null 2>&1 || return 1
	perf_counts "$WORK/count-probe.perf" >/dev/null
}

# measure_count LEG ROUND: the counted leg on the running target. Appends
# to count.tsv: leg round requests syscalls switches task_clock_ms other%
# kernel% (the share of the proxy's CPU ticks spent in the kernel, from
# /proc: perf's task-clock does not split it)
measure_count() {
	local leg=$1 round=$2 raw="$WORK/count-$1-$2.txt" stat="$WORK/count-$1-$2.perf" pids line n counts m0 m1 p0 p1 t0 t1 s0 s1
	pids=$(IFS=,; echo "${LEG_PIDS[*]}")
	p0=$(cpu_ticks "${LEG_PIDS[@]}" "$UP_PID")
	s0=$(cpu_split "${LEG_PIDS[@]}")
	m0=$(machine_busy_ticks)
	t0=$EPOCHREALTIME
	start count-perf perf stat -x, -e "$COUNT_EVENTS" -p "$pids" -o "$stat" -- sleep "$BENCH_COUNT_DURATION"
	local perf_pid=$PID
	times >"$WORK/times.0"
	${NICE[@]+"${NICE[@]}"} wrk "${WRK_ARGS[@]}" -d"$BENCH_COUNT_DURATION" "$LEG_URL" >"$raw" 2>&1 || true
	times >"$WORK/times.1"
	if ! wait "$perf_pid"; then
		SKIPPED+=("$LEG_LABEL, counted, round $round: perf stat failed: $(tail -n1 "$WORK/count-perf.log")")
		return 0
	fi
	t1=$EPOCHREALTIME
	m1=$(machine_busy_ticks)
	p1=$(cpu_ticks "${LEG_PIDS[@]}" "$UP_PID")
	s1=$(cpu_split "${LEG_PIDS[@]}")
	line=$(grep -m1 '^BENCH_RESULT' "$raw") || {
		SKIPPED+=("$LEG_LABEL, counted, round $round: no result line in the wrk output")
		return 0
	}
	n=$(field requests "$line")
	counts=$(perf_counts "$stat") || {
		SKIPPED+=("$LEG_LABEL, counted, round $round: perf stat counted nothing usable")
		return 0
	}
	awk -v leg="$leg" -v r="$round" -v n="$n" -v counts="$counts" -v dp=$((p1 - p0)) -v dm=$((m1 - m0)) -v dw="$(wrk_cpu_seconds)" \
		-v tck="$CLK_TCK" -v cpus="$(nproc)" -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
		-v s0="$s0" -v s1="$s1" 'BEGIN {
		split(counts, c, " ")
		other = (dm - dp) / tck - dw
		if (other < 0) other = 0
		other = 100 * other / (wall * cpus)
		if (other > 100) other = 100
		split(s0, a, " "); split(s1, b, " ")
		du = b[1] - a[1]; ds = b[2] - a[2]
		kernel = (du + ds > 0 ? sprintf("%.1f", 100 * ds / (du + ds)) : "-")
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\n", leg, r, n, c[1], c[2], c[3], other, kernel
	}' >>"$WORK/count.tsv"
	log "      $(awk -F'\t' 'END {printf "%.2f system calls, %.3f context switches, %.1f µs CPU per request (%s%% in the kernel), other load %s%%", $4/$3, $5/$3, $6*1000/$3, $8, $7}' "$WORK/count.tsv")"
}

# count_rows COUNT prints the counted leg's table: per leg, medians over its
# clean rounds (other load at most BENCH_NOISY) of each count per request,
# then the medians of the per-round ratios of CPU per request.
count_rows() {
	awk -F'\t' -v noisy="${BENCH_NOISY:-10}" "$AWK_MEDIAN"'
		{
			k = $1 SUBSEP $2
			if (!($1 in seen)) { seen[$1] = 1; order[++legs] = $1 }
			if ($2 + 0 > rounds) rounds = $2 + 0
			have[k] = 1; sc[k] = $4 / $3; sw[k] = $5 / $3; us[k] = $6 * 1000 / $3
			ok[k] = ($7 + 0 <= noisy + 0)
			# $8: percent of the CPU in the kernel, "-" when unknown
			if ($8 ~ /^[0-9.]+$/) ks[k] = us[k] * $8 / 100
		}
		# mid(leg, what): the median over the leg'"'"'s rounds (pick).
		function mid(leg, what,   sel, n, i, x, v, k) {
			n = pick(leg, "", rounds, sel)
			delete x; v = 0
			for (i = 1; i <= n; i++) {
				k = leg SUBSEP sel[i]
				if (what == "ks" && !(k in ks)) continue
				x[++v] = (what == "sc" ? sc[k] : what == "sw" ? sw[k] : what == "ks" ? ks[k] : us[k])
			}
			USED = v
			return v ? med(x, v) : "none"
		}
		# ratio(a, b): the median over the rounds with both legs (pick) of
		# a'"'"'s CPU per request over b'"'"'s.
		function ratio(a, b,   sel, n, i, x) {
			n = pick(a, b, rounds, sel)
			delete x
			for (i = 1; i <= n; i++) x[i] = us[a, sel[i]] / us[b, sel[i]]
			return n ? sprintf("%.2f", med(x, n)) : "none"
		}
		END {
			if (legs == 0) exit
			print "| leg | system calls / request | context switches / request | CPU µs / request | of which in the kernel, µs | rounds |"
			print "|---|---:|---:|---:|---:|---:|"
			for (i = 1; i <= legs; i++) {
				l = order[i]
				kern[l] = mid(l, "ks")
				a = mid(l, "sc"); b = mid(l, "sw"); c = mid(l, "us"); used = USED; clean = CLEAN
				total[l] = c
				printf "| %s | %.2f | %.3f | %.1f | %s | %s |\n", l, a, b, c, (kern[l] == "none" ? "–" : sprintf("%.1f", kern[l])), (clean > 0 ? used : used " (none clean)")
			}
			fn = ratio("ficus", "nginx"); bn = ratio("bare", "nginx"); pn = ratio("bare-prefork", "nginx"); fb = ratio("ficus", "bare")
			out = ""
			if (fn != "none") out = out "Ficus / nginx " fn
			if (bn != "none") out = out (out == "" ? "" : ", ") "bare Fiber / nginx " bn
			if (pn != "none") out = out (out == "" ? "" : ", ") "bare Fiber in Prefork / nginx " pn
			if (fb != "none") out = out (out == "" ? "" : ", ") "Ficus / bare Fiber " fb
			if (out != "") printf "\nCPU per request, counted (medians of per-round ratios): %s.\n", out
			# The floor argument: what a Go proxy spends in the kernel alone,
			# beside nginx'"'"'s whole CPU per request.
			if (("nginx" in total) && total["nginx"] != "none") {
				out = ""
				for (i = 1; i <= legs; i++) {
					l = order[i]
					if (l == "nginx" || kern[l] == "none") continue
					out = out (out == "" ? "" : ", ") sprintf("%s %.1f µs (%.2f × nginx'"'"'s whole)", l, kern[l], kern[l] / total["nginx"])
				}
				if (out != "") printf "In the kernel alone (the proxy'"'"'s share of kernel ticks in /proc, times its counted CPU): %s; nginx spends %.1f µs in all.\n", out, total["nginx"]
			}
		}' "$1"
}

# measure_rate LEG ROUND: the fixed-rate leg on the running target. Appends
# to rate.tsv: leg round rate sent errors achieved p50us p99us p999us other%
measure_rate() {
	local leg=$1 round=$2 raw="$WORK/rate-$1-$2.txt" line p0 u0 m0 t0 p1 u1 m1 t1
	p0=$(cpu_ticks ${LEG_PIDS[@]+"${LEG_PIDS[@]}"} ${LEG_AUX[@]+"${LEG_AUX[@]}"} "$UP_PID")
	m0=$(machine_busy_ticks)
	t0=$EPOCHREALTIME
	times >"$WORK/times.0"
	if ! ${NICE[@]+"${NICE[@]}"} "$WORK/bin/loadgen" -url "$LEG_URL" -rate "$BENCH_RATE" -duration "$BENCH_RATE_DURATION" \
		-workers "$BENCH_CONNS" -users "$BENCH_USERS" -timeout "$BENCH_TIMEOUT" >"$raw" 2>&1; then
		SKIPPED+=("$LEG_LABEL, fixed rate, round $round: loadgen failed: $(tail -n1 "$raw")")
		return 0
	fi
	times >"$WORK/times.1"
	t1=$EPOCHREALTIME
	m1=$(machine_busy_ticks)
	p1=$(cpu_ticks ${LEG_PIDS[@]+"${LEG_PIDS[@]}"} ${LEG_AUX[@]+"${LEG_AUX[@]}"} "$UP_PID")
	line=$(grep -m1 '^BENCH_RATE_RESULT' "$raw") || {
		SKIPPED+=("$LEG_LABEL, fixed rate, round $round: no result line")
		return 0
	}
	awk -v leg="$leg" -v r="$round" -v rate="$(field rate "$line")" -v sent="$(field sent "$line")" -v errs="$(field errors "$line")" \
		-v ach="$(field achieved "$line")" -v p50="$(field p50_us "$line")" -v p99="$(field p99_us "$line")" -v p999="$(field p999_us "$line")" \
		-v dp=$((p1 - p0)) -v dm=$((m1 - m0)) -v dw="$(wrk_cpu_seconds)" -v tck="$CLK_TCK" -v cpus="$(nproc)" \
		-v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" 'BEGIN {
		other = (dm - dp) / tck - dw
		if (other < 0) other = 0
		other = 100 * other / (wall * cpus)
		if (other > 100) other = 100
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\n", leg, r, rate, sent, errs, ach, p50, p99, p999, other
	}' >>"$WORK/rate.tsv"
	log "      $(awk -F'\t' 'END {printf "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, errors %s, achieved %s/s, other load %s%%", $7/1000, $8/1000, $9/1000, $5, $6, $10}' "$WORK/rate.tsv")"
}

# ---------------------------------------------------------------- report

# target_medians ROUNDS prints one RESULTS line per target, in first-seen
# order. A round is clean when other processes used at most BENCH_NOISY
# percent (default 10) of the machine and wrk saw no errors; each column is
# the median over the target's clean rounds (over all its rounds when none
# is clean), except peak RSS and other load, which are the largest of those
# rounds, and errors, their sum. The VM's speed drifts between rounds; a
# median is not moved by one slow or lucky round, as the first or the least
# loaded round would be. After the twelve columns of rounds.tsv it appends:
# rounds used, rounds measured, noisy rounds, the largest other load of any
# round, rounds with errors, errors of all rounds.
target_medians() {
	awk -F'\t' -v noisy="${BENCH_NOISY:-10}" "$AWK_MEDIAN"'
		{
			leg = $1
			if (!(leg in n)) { order[++legs] = leg; nclean[leg] = 0; nnoisy[leg] = 0; maxo[leg] = 0; nerr[leg] = 0; errs[leg] = 0 }
			i = ++n[leg]
			row[leg, i] = $0
			clean[leg, i] = ($10 + 0 <= noisy + 0 && $6 + 0 == 0)
			if (clean[leg, i]) nclean[leg]++
			if ($10 + 0 > noisy + 0) nnoisy[leg]++
			if ($10 + 0 > maxo[leg]) maxo[leg] = $10 + 0
			if ($6 + 0 > 0) { nerr[leg]++; errs[leg] += $6 }
		}
		END {
			for (k = 1; k <= legs; k++) {
				leg = order[k]
				m = 0; e = 0; rss = -1; other = 0; nocpu = 0; norss = 0; noall = 0; noidle = 0
				for (i = 1; i <= n[leg]; i++) {
					if (nclean[leg] > 0 && !clean[leg, i]) continue
					split(row[leg, i], f, "\t")
					m++
					label = f[2]
					rps[m] = f[3] + 0; p50[m] = f[4] + 0; p99[m] = f[5] + 0; e += f[6]
					if (f[7] == "-") nocpu = 1; else cpu[m] = f[7] + 0
					up[m] = f[8] + 0
					if (f[9] == "-") norss = 1; else if (f[9] + 0 > rss) rss = f[9] + 0
					if (f[10] + 0 > other) other = f[10] + 0
					if (f[11] == "") noall = 1; else all[m] = f[11] + 0
					if (f[12] == "") noidle = 1; else idle[m] = f[12] + 0
				}
				printf "%s\t%s\t%.0f\t%.0f\t%.0f\t%d\t%s\t%.2f\t%s\t%.0f\t%s\t%s\t%d\t%d\t%d\t%.0f\t%d\t%d\n", leg, label, med(rps, m), med(p50, m), med(p99, m), e,
					(nocpu ? "-" : sprintf("%.2f", med(cpu, m))), med(up, m), (norss ? "-" : sprintf("%d", rss)), other,
					(noall ? "" : sprintf("%.2f", med(all, m))), (noidle ? "" : sprintf("%.0f", med(idle, m))),
					m, n[leg], nnoisy[leg], maxo[leg], nerr[leg], errs[leg]
			}
		}' "$1"
}

# results_table RESULTS prints the per-target table, then warnings: Noisy
# names the targets for which other processes used more than BENCH_NOISY
# percent (default 10) of the machine in more than half of their rounds (so
# even their medians are disturbed); Errors those that answered errors,
# saying whether those rounds were left out. A RESULTS line with only the
# twelve columns of rounds.tsv reads as a single round.
results_table() {
	awk -F'\t' -v noisy="${BENCH_NOISY:-10}" '
		{
			used = ($13 == "" ? 1 : $13); total = ($14 == "" ? 1 : $14)
			nn = ($15 == "" ? ($10 + 0 > noisy + 0) : $15 + 0)
			maxo = ($16 == "" ? $10 : $16)
			ne = ($17 == "" ? ($6 + 0 > 0) : $17 + 0)
			errs = ($18 == "" ? $6 : $18)
			if (total > 1) multi = 1
			rss = ($9 == "-") ? "-" : sprintf("%.1f", $9 / 1024)
			rows[++n] = sprintf("| %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s | %s | %s |", $2, $3, $4 / 1000, $5 / 1000, $6, $7, $8, ($11 == "" ? "-" : $11), rss, $10, ($12 == "" ? "-" : $12))
			rounds[n] = (used == total ? used : used " of " total)
			if (2 * nn > total) loud = loud (loud == "" ? "" : ", ") $2 (total == 1 ? " (" maxo "%)" : " (" nn " of " total " rounds, up to " maxo "%)")
			if (ne > 0) {
				if ($6 + 0 > 0) bad = bad (bad == "" ? "" : ", ") $2 " (" $6 ")"
				else dropped = dropped (dropped == "" ? "" : ", ") $2 " (" errs " in " ne " of " total " rounds)"
			}
		}
		END {
			if (multi) {
				print "| target | requests/s | p50 ms | p99 ms | errors | proxy CPU s / 100k req | upstream CPU s / 100k req | all CPU s / 100k req | proxy peak RSS MiB | other load % | idle % | rounds |"
				print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
				for (i = 1; i <= n; i++) print rows[i] " " rounds[i] " |"
			} else {
				print "| target | requests/s | p50 ms | p99 ms | errors | proxy CPU s / 100k req | upstream CPU s / 100k req | all CPU s / 100k req | proxy peak RSS MiB | other load % | idle % |"
				print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
				for (i = 1; i <= n; i++) print rows[i]
			}
			if (loud != "") printf "\n**Noisy:** other processes used more than %s%% of the machine while measuring %s; rerun on a quiet machine before comparing.\n", noisy, loud
			if (bad != "") printf "\n**Errors:** %s answered errors or timed out; their requests/s are not comparable.\n", bad
			if (dropped != "") printf "\n**Errors:** %s answered errors or timed out in some rounds; those rounds are left out of the medians.\n", dropped
		}' "$1"
}

# ratio_rows ROUNDS prints the ratios of requests/s, p99, proxy CPU per
# request and requests per CPU-second between the legs measured (nothing
# when no pair was). Each ratio is computed within a round, whose legs ran
# minutes apart at most, so a drift of the machine's speed common to both
# cancels; the row shows the median over rounds, leaving out rounds where
# either leg was noisy (other load above BENCH_NOISY, default 10) or had
# errors, as long as one clean round remains. With several rounds the
# requests/s cell says how many rounds the median used and their range. The
# target is judged on the medians. A line without a round column (the
# RESULTS format) counts as round 1.
ratio_rows() {
	awk -F'\t' -v noisy="${BENCH_NOISY:-10}" "$AWK_MEDIAN"'
		{
			r = ($13 == "" ? 1 : $13 + 0)
			if (!(r in seen)) { seen[r] = 1; rounds[++nr] = r }
			k = $1 SUBSEP r
			have[k] = 1; rps[k] = $3; p99[k] = $5; cpu[k] = $7; all[k] = $11
			ok[k] = ($10 + 0 <= noisy + 0 && $6 + 0 == 0)
		}
		function row(a, b, text, target,   i, r, ka, kb, n, nc, used, lo, hi, q, p, c, e, line, note) {
			n = 0; nc = 0
			for (i = 1; i <= nr; i++) {
				r = rounds[i]
				if (!((a SUBSEP r) in have) || !((b SUBSEP r) in have) || rps[b, r] <= 0) continue
				both[++n] = r
				if (ok[a, r] && ok[b, r]) nc++
			}
			if (n == 0) return
			delete R; delete P; delete C; delete E
			nR = 0; nP = 0; nC = 0; nE = 0
			for (i = 1; i <= n; i++) {
				r = both[i]; ka = a SUBSEP r; kb = b SUBSEP r
				if (nc > 0 && !(ok[ka] && ok[kb])) continue
				R[++nR] = rps[ka] / rps[kb]
				if (p99[kb] > 0) P[++nP] = p99[ka] / p99[kb]
				if (cpu[ka] != "-" && cpu[kb] != "-" && cpu[kb] > 0) C[++nC] = cpu[ka] / cpu[kb]
				# requests per CPU-second of a over those of b
				if (all[ka] > 0 && all[kb] > 0) E[++nE] = all[kb] / all[ka]
			}
			q = med(R, nR); lo = R[1]; hi = R[nR]
			p = nP ? sprintf("%.2f", med(P, nP)) : "-"
			c = nC ? sprintf("%.2f", med(C, nC)) : "-"
			e = nE ? med(E, nE) : -1
			note = ""
			if (nr > 1) {
				used = (nR < n ? nR " of " n : nR) (n == 1 ? " round" : " rounds")
				if (nR == 1) note = " (from " used
				else note = sprintf(" (median of %s, range %.2f–%.2f", used, lo, hi)
				if (nc == 0) note = note ", none clean"
				note = note ")"
			}
			if (a == "ficus" && b == "nginx") { FN_Q = q; FN_P = p; FN_C = c; FN_E = e }
			line = sprintf("| %s | %.2f%s | %s | %s |", text, q, note, p, c)
			line = line (e < 0 ? " - |" : sprintf(" %.2f |", e))
			if (target != "") {
				line = line sprintf(" ≥ %s: %s by requests/s", target, (q >= target + 0 ? "met" : "not met"))
				if (e >= 0) line = line sprintf(", %s per CPU-second", (e >= target + 0 ? "met" : "not met"))
				line = line " |"
			} else line = line " |"
			rows[++nrows] = line
		}
		END {
			row("ficus", "bare", "Ficus / bare Fiber", "0.85")
			row("ficus", "nginx", "Ficus / nginx", "0.90")
			row("bare", "nginx", "bare Fiber / nginx", "")
			row("bare-prefork", "nginx", "bare Fiber in Prefork / nginx", "")
			row("bare-prefork", "bare", "bare Fiber in Prefork / bare Fiber", "")
			row("bare", "direct", "bare Fiber / direct", "")
			row("nginx", "direct", "nginx / direct", "")
			row("ficus", "direct", "Ficus / direct", "")
			row("ficus-stream", "bare", "Ficus streaming / bare Fiber", "")
			row("ficus-stream", "ficus", "Ficus streaming / Ficus", "")
			row("nginx-mirror", "nginx", "nginx mirroring 100% / nginx", "")
			if (nrows == 0) exit
			print "| ratio | requests/s | p99 | proxy CPU per request | requests per CPU-second | target |"
			print "|---|---:|---:|---:|---:|---|"
			for (i = 1; i <= nrows; i++) print rows[i]
			if (FN_Q != "") {
				printf "\nFicus against nginx, medians of paired rounds: requests/s %.2f (target ≥ 0.90: %s), requests per CPU-second %s, proxy CPU per request %s (target ≤ 1.15: %s), p99 %s (target ≤ 1.50: %s).\n",
					FN_Q, (FN_Q >= 0.90 ? "met" : "not met"), (FN_E < 0 ? "-" : sprintf("%.2f", FN_E)),
					FN_C, (FN_C == "-" ? "not measured" : (FN_C + 0 <= 1.15 ? "met" : "not met")),
					FN_P, (FN_P == "-" ? "not measured" : (FN_P + 0 <= 1.50 ? "met" : "not met"))
			}
		}' "$1"
}

# rate_rows RATE prints the fixed-rate table: per leg, the medians over its
# clean rounds (other load at most BENCH_NOISY, default 10; no errors; at
# least 95% of the rate achieved; all rounds when none is) of p50, p99 and
# p99.9, and of what each adds over direct in the same round; then Ficus's
# added p99 against nginx's, the target being that Ficus adds no more.
rate_rows() {
	awk -F'\t' -v noisy="${BENCH_NOISY:-10}" "$AWK_MEDIAN"'
		{
			k = $1 SUBSEP $2
			if (!($1 in seen)) { seen[$1] = 1; order[++legs] = $1 }
			if ($2 + 0 > rounds) rounds = $2 + 0
			have[k] = 1; p50[k] = $7; p99[k] = $8; p999[k] = $9; errs[$1] += $5
			ok[k] = ($10 + 0 <= noisy + 0 && $5 + 0 == 0 && $6 + 0 >= 0.95 * $3)
		}
		# mid(leg, what, added): median over the leg'"'"'s rounds (with direct
		# in them when added; pick) of the percentile, or of what it adds
		# over direct.
		function mid(leg, what, added,   sel, n, i, x, k, d) {
			n = pick(leg, (added ? "direct" : ""), rounds, sel)
			delete x
			for (i = 1; i <= n; i++) {
				k = leg SUBSEP sel[i]; d = "direct" SUBSEP sel[i]
				if (what == 50) x[i] = p50[k] - (added ? p50[d] : 0)
				if (what == 99) x[i] = p99[k] - (added ? p99[d] : 0)
				if (what == 999) x[i] = p999[k] - (added ? p999[d] : 0)
			}
			USED = n
			return n ? med(x, n) : "none"
		}
		function ms(us) { return us == "none" ? "-" : sprintf("%.2f", us / 1000) }
		function pm(us) { return us == "none" ? "-" : sprintf("%+.2f", us / 1000) }
		END {
			if (legs == 0) exit
			print "| leg | p50 ms | p99 ms | p99.9 ms | p50 added ms | p99 added ms | p99.9 added ms | errors | rounds |"
			print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
			for (i = 1; i <= legs; i++) {
				l = order[i]
				a = mid(l, 50, 0); b = mid(l, 99, 0); c = mid(l, 999, 0); used = USED; clean = CLEAN
				if (l == "direct") { d50 = "-"; d99 = "-"; d999 = "-" }
				else { d50 = pm(mid(l, 50, 1)); d99 = pm(mid(l, 99, 1)); d999 = pm(mid(l, 999, 1)) }
				printf "| %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", l, ms(a), ms(b), ms(c), d50, d99, d999, errs[l], (clean > 0 ? used : used " (none clean)")
			}
			f = mid("ficus", 99, 1); n = mid("nginx", 99, 1)
			if (f != "none" && n != "none")
				printf "\nFicus adds %s ms at p99 over direct, nginx %s ms: target Ficus ≤ nginx: %s.\n", pm(f), pm(n), (f <= n ? "met" : "not met")
		}' "$1"
}

# round_table ROUNDS prints every measured leg of every round, in the order
# they ran, with the round's Ficus / bare requests/s ratio on Ficus's row
# ("-" when the bare leg is missing from that round): the spread behind the
# medians.
round_table() {
	awk -F'\t' '
		{
			line[++n] = $0
			r = $13 + 0
			if ($1 == "ficus") fic[r] = $3
			if ($1 == "bare") bare[r] = $3
		}
		END {
			if (n == 0) exit
			print "| round | target | requests/s | p99 ms | proxy CPU s / 100k req | other load % | Ficus / bare requests/s in the round |"
			print "|---:|---|---:|---:|---:|---:|---:|"
			for (i = 1; i <= n; i++) {
				split(line[i], f, "\t")
				r = f[13] + 0
				ratio = ""
				if (f[1] == "ficus") ratio = ((r in bare) && bare[r] > 0) ? sprintf("%.2f", fic[r] / bare[r]) : "-"
				printf "| %s | %s | %s | %.2f | %s | %s | %s |\n", f[13], f[1], f[3], f[5] / 1000, f[7], f[10], ratio
			}
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
		declare -F "start_${leg//-/_}" >/dev/null || die "unknown leg '$leg' in BENCH_LEGS (known: direct bare bare-prefork nginx ficus ficus-stream nginx-mirror)"
	done
	[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer, got '$BENCH_ROUNDS'"
	[[ ${BENCH_NOISY:-10} =~ ^[0-9]+([.][0-9]+)?$ ]] || die "BENCH_NOISY must be a percentage, got '$BENCH_NOISY'"
	steps=$((${#LEGS[@]} * BENCH_ROUNDS))
	[[ $BENCH_GO == 1 ]] && steps=$((steps + 1))

	log "==> building the benchmark programs into $WORK/bin"
	"$GO" build -o "$WORK/bin/upstream" ./bench/upstream
	"$GO" build -o "$WORK/bin/bareproxy" ./bench/bareproxy
	"$GO" build -o "$WORK/bin/loadgen" ./bench/loadgen
	: >"$WORK/rate.tsv"
	: >"$WORK/rss.tsv"
	: >"$WORK/count.tsv"
	if [[ $BENCH_COUNT_DURATION != 0 ]] && ! count_ok; then
		NOTES+=("The counted leg did not run: \`perf stat -e $COUNT_EVENTS\` cannot count here (it needs perf, from the linux-perf package, and root or kernel.perf_event_paranoid ≤ 1).")
		BENCH_COUNT_DURATION=0
	fi
	if [[ " ${LEGS[*]} " == *" ficus "* || " ${LEGS[*]} " == *" ficus-stream "* ]]; then
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
				measure "$leg" "$round"
				if [[ $BENCH_RATE != 0 && " $BENCH_RATE_LEGS " == *" $leg "* ]]; then
					log "[$step/$steps] $leg$rtag: fixed rate, $BENCH_RATE requests/s for $BENCH_RATE_DURATION…"
					measure_rate "$leg" "$round"
				fi
				if [[ $BENCH_COUNT_DURATION != 0 && " $BENCH_COUNT_LEGS " == *" $leg "* ]] && ((${#LEG_PIDS[@]} > 0)); then
					log "[$step/$steps] $leg$rtag: counted, $BENCH_COUNT_DURATION under perf stat…"
					measure_count "$leg" "$round"
				fi
				if [[ -n $LEG_AFTER ]] && ((round == 1)); then "$LEG_AFTER"; fi
				if ((round == 1 && BENCH_RSS_CONNS > 0 && ${#LEG_PIDS[@]} > 0)); then
					log "[$step/$steps] $leg: peak RSS with $BENCH_RSS_CONNS connections ($BENCH_RSS_DURATION)…"
					measure_rss "$leg"
				fi
			fi
			for pid in ${LEG_STOP[@]+"${LEG_STOP[@]}"}; do stop_started "$pid"; done
		done
	done
	target_medians "$WORK/rounds.tsv" >"$RESULTS"

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
			echo "- The targets ran in $BENCH_ROUNDS interleaved rounds. Each target's row gives its medians over its clean rounds"
			echo "  (other load at most ${BENCH_NOISY:-10}%, no errors); each ratio is computed within every round, then the median"
			echo "  over the rounds clean for both legs is shown. The last table lists every round."
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
		ratio_rows "$WORK/rounds.tsv"
		if [[ -s $WORK/rss.tsv ]]; then
			echo
			echo "Peak RSS (\`VmHWM\`) of each proxy in round 1: after its wrk run with $BENCH_CONNS connections, and after a further $BENCH_RSS_DURATION wrk run with $BENCH_RSS_CONNS:"
			echo
			rss_rows "$WORK/rss.tsv" "$BENCH_CONNS" "$BENCH_RSS_CONNS"
		fi
		if [[ -s $WORK/rate.tsv ]]; then
			echo
			echo "Fixed-rate latency: \`bench/loadgen -rate $BENCH_RATE -duration $BENCH_RATE_DURATION -workers $BENCH_CONNS\` (an open loop: requests leave at the rate whatever the answers do; latency counts from each request's release, so waiting for a free connection counts) on each leg right after its wrk run, $BENCH_USERS distinct \`X-User-Id\` values. \"added\" is the leg's percentile minus direct's in the same round, then the median over rounds clean for both (other load at most ${BENCH_NOISY:-10}%, no errors, the rate achieved):"
			echo
			rate_rows "$WORK/rate.tsv"
		fi
		if [[ -s $WORK/count.tsv ]]; then
			echo
			echo "Counted per request: \`perf stat -x, -e $COUNT_EVENTS -p PROXY_PIDS -- sleep $BENCH_COUNT_DURATION\` beside \`$(wrk_cmd "$BENCH_COUNT_DURATION" URL)\` on each leg after its other runs (all of nginx's processes), each count divided by the requests wrk counted. System calls and context switches per request are exact counts that barely move with the machine's state; CPU µs (task-clock) is measured, not sampled from /proc's ticks, but moves with the machine like every time. The kernel column splits that CPU by the proxy's share of system ticks in /proc over the same window:"
			echo
			count_rows "$WORK/count.tsv"
		fi
		if ((BENCH_ROUNDS > 1)) && [[ -s $WORK/rounds.tsv ]]; then
			echo
			echo "Every round, in the order measured:"
			echo
			round_table "$WORK/rounds.tsv"
		fi
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
