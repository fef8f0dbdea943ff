#!/usr/bin/env bash
# Loopback benchmark of shadow traffic (docs/shadow.md explains the design).
#
# The question: does mirroring reads to a target that takes 5 s to answer
# leak into the primary's throughput or latency? One run measures, with the
# same wrk parameters, in turn and for BENCH_ROUNDS interleaved rounds:
#   ficus-0     wrk -> ficus (route with shadow percent 0)   -> upstream
#   ficus-100   wrk -> ficus (shadow 100% of reads to a 5 s target) -> upstream
#   nginx       wrk -> nginx -> upstream
#   nginx-mirror wrk -> nginx (mirror every request to the 5 s target) -> upstream
# and writes the medians between the `<!-- bench-shadow:begin -->` /
# `<!-- bench-shadow:end -->` markers of docs/benchmarks.md.
#
# Targets: Ficus p99 with 100% shadowing within +5% of 0%; Ficus requests/s
# with 100% shadowing at least 2x nginx's mirrored requests/s.
#
# Usage: bench/shadow.sh
# Environment (all optional):
#   BENCH_DURATION  measured wrk run per leg, default 10s
#   BENCH_WARMUP    unmeasured wrk run before it, default 3s
#   BENCH_THREADS   wrk threads, default 2
#   BENCH_CONNS     wrk connections, default 64
#   BENCH_TIMEOUT   wrk per-request timeout, default 10s (longer than the
#                   target's sleep, so a proxy that waits for its mirror is
#                   measured as slow rather than as failing)
#   BENCH_ROUNDS    interleaved rounds of all legs, default 4; medians reported
#   BENCH_SLEEP     the shadow target's delay, default 5s
#   BENCH_LEGS      legs in order, default "ficus-0 ficus-100 nginx nginx-mirror";
#                   the first two swap places every other round
#   BENCH_SHADOW_CONCURRENCY  the Ficus route's shadow concurrency, default 16 (the configuration default)
#   BENCH_DOC       results file, default docs/benchmarks.md; empty: print only
#   BENCH_KEEP      1 keeps the temporary directory (configs, raw logs)
#   FICUS_BIN       use this ficus binary instead of building ./cmd/ficus
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
BENCH_TIMEOUT=${BENCH_TIMEOUT:-10s}
BENCH_ROUNDS=${BENCH_ROUNDS:-4}
BENCH_SLEEP=${BENCH_SLEEP:-5s}
BENCH_DOC=${BENCH_DOC-docs/benchmarks.md}
BENCH_KEEP=${BENCH_KEEP:-0}
GO=${GO:-go}
export BENCH_USERS=${BENCH_USERS:-1000}

REQ_PATH=/api/v1/products/BENCH-0001
WRK_ARGS=(-t"$BENCH_THREADS" -c"$BENCH_CONNS" --timeout "$BENCH_TIMEOUT" --latency -s bench/wrk.lua)
read -r -a LEGS <<<"${BENCH_LEGS:-ficus-0 ficus-100 nginx nginx-mirror}"
BENCH_SHADOW_CONCURRENCY=${BENCH_SHADOW_CONCURRENCY:-16}
PATH=$PATH:/usr/sbin:/sbin

log() { printf '%s\n' "$*" >&2; }
die() {
	log "bench-shadow: $*"
	exit 1
}

# need_pkg CMD PKG installs the Debian package PKG when CMD is missing.
need_pkg() {
	command -v "$1" >/dev/null 2>&1 && return 0
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "$1 is missing and sudo is not available: install the $2 package"
		sudo=(sudo)
	fi
	log "==> installing $2 (apt-get)"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
	command -v "$1" >/dev/null 2>&1 || die "installed $2 but $1 is still not on PATH"
}

WORK=
STARTED=()

alive() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[[ ${st%% *} != Z ]]
}

# stop_pid PID: SIGTERM, up to 5 s of grace, then SIGKILL; reaps the child.
stop_pid() {
	local pid=$1 i
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			log "bench-shadow: PID $pid ignored SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in ${STARTED[@]+"${STARTED[@]}"}; do
		stop_pid "$pid"
	done
	if [[ -n $WORK ]]; then
		if [[ $BENCH_KEEP == 1 ]]; then log "bench-shadow: kept $WORK"; else rm -rf "$WORK"; fi
	fi
	exit "$rc"
}

# start NAME CMD... runs CMD in the background (output in $WORK/NAME.log)
# and records its PID in STARTED and PID.
start() {
	local name=$1
	shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PID=$!
	STARTED+=("$PID")
}

# stop_started PID stops one process started by start() and forgets it.
stop_started() {
	local pid=$1 kept=() p
	stop_pid "$pid"
	for p in ${STARTED[@]+"${STARTED[@]}"}; do
		[[ $p == "$pid" ]] || kept+=("$p")
	done
	STARTED=(${kept[@]+"${kept[@]}"})
}

# wait_file FILE PID NAME prints the address a program wrote once listening.
wait_file() {
	local i
	for ((i = 0; i < 100; i++)); do
		if [[ -s $1 ]]; then
			tr -d '\n' <"$1"
			return 0
		fi
		alive "$2" || break
		sleep 0.1
	done
	tail -n 20 "$WORK/$3.log" >&2 || true
	return 1
}

# wait_http URL PID NAME: until URL answers 200, up to 30 s.
wait_http() {
	local i code=
	for ((i = 0; i < 300; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true)
		[[ $code == 200 ]] && return 0
		alive "$2" || break
		sleep 0.1
	done
	log "bench-shadow: $3 did not answer 200 on $1 (last status ${code:-none}); its log:"
	tail -n 20 "$WORK/$3.log" >&2 || true
	return 1
}

# free_port prints a port nothing listens on, below the ephemeral range.
free_port() {
	local i p
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# ficus_conf FILE PORT ADMIN PERCENT: one route served by the fast upstream
# whose reads are shadowed (PERCENT) to the sleeping target.
ficus_conf() {
	cat >"$1" <<EOF
# Generated by bench/shadow.sh.
listen: 127.0.0.1:$2
admin:
  listen: 127.0.0.1:$3
  auditDB: $WORK/ficus-audit.db
limits:
  shutdownTimeout: 2s
upstreams:
  legacy:
    url: http://$UP_ADDR
    kind: acl
  slow:
    url: http://$SLOW_ADDR
    kind: new
shadow:
  db: $WORK/ficus-shadow.db
routes:
  - name: bench
    path: /api/v1/products/*
    methods: [GET, HEAD]
    new: slow
    canary: 0
    shadow:
      percent: $4
      target: slow
      # Longer than the target's sleep: exchanges complete (no breaker
      # trip), each holding one of the pool's slots for the whole sleep.
      timeout: 10s
      concurrency: $BENCH_SHADOW_CONCURRENCY
EOF
}

# nginx_conf NAME PORT [MIRROR_ADDR]: the reference proxy, optionally with
# its mirror directive sending every request to MIRROR_ADDR.
nginx_conf() {
	local d="$WORK/$1" mirror_loc="" mirror_up="" mirror_dir=""
	mkdir -p "$d/tmp"
	chmod 0755 "$d" "$d/tmp"
	if [[ -n ${3:-} ]]; then
		mirror_up="upstream shadow { server $3; keepalive 64; }"
		mirror_dir="mirror /_mirror; mirror_request_body on;"
		mirror_loc="location = /_mirror {
      internal;
      proxy_pass http://shadow\$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }"
	fi
	cat >"$d/nginx.conf" <<EOF
# Generated by bench/shadow.sh.
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  keepalive_requests 100000;
  upstream up { server $UP_ADDR; keepalive 64; keepalive_requests 100000; }
  $mirror_up
  server {
    listen 127.0.0.1:$2;
    location / {
      $mirror_dir
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    $mirror_loc
  }
}
EOF
}

# start_leg LEG sets LEG_URL and LEG_PID (the proxy), or dies.
start_leg() {
	local port admin
	port=$(free_port)
	case $1 in
	ficus-0 | ficus-100)
		admin=$(free_port)
		while [[ $admin == "$port" ]]; do admin=$(free_port); done
		ficus_conf "$WORK/$1.yaml" "$port" "$admin" "${1#ficus-}"
		"$WORK/bin/ficus" gateway --config "$WORK/$1.yaml" --check >"$WORK/$1-check.log" 2>&1 ||
			die "ficus rejects the benchmark config: $(tr '\n' ' ' <"$WORK/$1-check.log" | cut -c1-300)"
		start "$1" "$WORK/bin/ficus" gateway --config "$WORK/$1.yaml" --log-level warn
		LEG_ADMIN="http://127.0.0.1:$admin"
		;;
	nginx | nginx-mirror)
		local mirror=
		[[ $1 == nginx-mirror ]] && mirror=$SLOW_ADDR
		nginx_conf "$1" "$port" "$mirror"
		nginx -t -q -p "$WORK/$1" -c "$WORK/$1/nginx.conf" >"$WORK/$1-test.log" 2>&1 ||
			die "nginx rejected its config: $(head -c 300 "$WORK/$1-test.log")"
		start "$1" nginx -p "$WORK/$1" -c "$WORK/$1/nginx.conf" -g 'daemon off;'
		LEG_ADMIN=
		;;
	esac
	LEG_PID=$PID
	LEG_URL="http://127.0.0.1:$port$REQ_PATH"
	wait_http "$LEG_URL" "$LEG_PID" "$1" || die "$1 did not start"
}

# family PID prints PID and its direct children (nginx's workers).
family() {
	local d st f
	echo "$1"
	for d in /proc/[0-9]*; do
		st=$(cat "$d/stat" 2>/dev/null) || continue
		read -r -a f <<<"${st##*) }"
		if [[ ${f[1]} == "$1" ]]; then echo "${d#/proc/}"; fi
	done
}

# cpu_ticks PID... sums user+system clock ticks of the processes.
cpu_ticks() {
	local pid st f total=0
	for pid in "$@"; do
		st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		read -r -a f <<<"${st##*) }"
		total=$((total + f[11] + f[12]))
	done
	echo "$total"
}

# busy_ticks prints the ticks all CPUs spent running anything (or stolen).
busy_ticks() {
	local _ user nice system steal
	read -r _ user nice system _ _ _ _ steal _ </proc/stat
	echo $((user + nice + system + steal))
}

# wrk_cpu_seconds: CPU of the children reaped between times.0 and times.1.
wrk_cpu_seconds() {
	awk 'function s(t,   p) { split(t, p, "m"); return p[1] * 60 + substr(p[2], 1, length(p[2]) - 1) }
		FNR == 2 { v = s($1) + s($2); if (NR == FNR) a = v; else b = v }
		END { printf "%.3f", b - a }' "$WORK/times.0" "$WORK/times.1"
}

# field NAME LINE prints NAME's value from a "BENCH_RESULT a=1 b=2" line.
field() { sed -n "s/.*[[:space:]]$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# measure LEG ROUND appends "leg round rps p50us p99us errors other%" to
# rounds.tsv. other% is the share of the machine used, while wrk ran, by
# processes outside the benchmark (other builds and tests on a shared box).
measure() {
	local raw="$WORK/wrk-$1-$2.txt" line n dur errs pids p0 m0 t0 p1 m1 t1
	wrk "${WRK_ARGS[@]}" -d"$BENCH_WARMUP" "$LEG_URL" >"$WORK/wrk-$1-$2-warmup.txt" 2>&1 || true
	mapfile -t pids < <(family "$LEG_PID")
	pids+=("$UP_PID" "$SLOW_PID")
	p0=$(cpu_ticks "${pids[@]}")
	m0=$(busy_ticks)
	t0=$EPOCHREALTIME
	times >"$WORK/times.0"
	wrk "${WRK_ARGS[@]}" -d"$BENCH_DURATION" "$LEG_URL" >"$raw" 2>&1 || die "wrk failed on $1: $(tail -n1 "$raw")"
	times >"$WORK/times.1"
	t1=$EPOCHREALTIME
	m1=$(busy_ticks)
	p1=$(cpu_ticks "${pids[@]}")
	line=$(grep -m1 '^BENCH_RESULT' "$raw") || die "no result line in $raw"
	n=$(field requests "$line")
	dur=$(field duration_us "$line")
	errs=$(($(field connect_errors "$line") + $(field read_errors "$line") + $(field write_errors "$line") + $(field status_errors "$line") + $(field timeouts "$line")))
	awk -v leg="$1" -v r="$2" -v n="$n" -v dur="$dur" -v p50="$(field p50_us "$line")" -v p99="$(field p99_us "$line")" -v e="$errs" \
		-v dp=$((p1 - p0)) -v dm=$((m1 - m0)) -v dw="$(wrk_cpu_seconds)" -v tck="$(getconf CLK_TCK)" -v cpus="$(nproc)" \
		-v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" 'BEGIN {
		other = (dm - dp) / tck - dw
		if (other < 0) other = 0
		other = 100 * other / (wall * cpus)
		if (other > 100) other = 100
		printf "%s\t%s\t%.0f\t%s\t%s\t%s\t%.0f\n", leg, r, n / (dur / 1e6), p50, p99, e, other
	}' >>"$WORK/rounds.tsv"
	log "      $(awk -F'\t' 'END {printf "%s req/s, p50 %.2f ms, p99 %.2f ms, errors %s, other load %s%%", $3, $4/1000, $5/1000, $6, $7}' "$WORK/rounds.tsv")"
}

# shadow_counts prints the gateway's ficus_shadow_requests_total by result.
shadow_counts() {
	curl -s --max-time 5 "$LEG_ADMIN/metrics" | awk '/^ficus_shadow_requests_total\{/ && /route="bench"/ {
		r = $0; sub(/.*result="/, "", r); sub(/".*/, "", r)
		out = out (out == "" ? "" : ", ") r " " $NF } END { print out }'
}

# medians prints per leg (in LEGS order): leg, median rps, median p50,
# median p99, total errors, median other load %.
medians() {
	local leg
	for leg in "${LEGS[@]}"; do
		awk -F'\t' -v leg="$leg" '
			function med(a, n,   i, j, t) {
				for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
				return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
			}
			$1 == leg { n++; rps[n] = $3; p50[n] = $4; p99[n] = $5; e += $6; o[n] = $7 }
			END { if (n) printf "%s\t%.0f\t%.0f\t%.0f\t%d\t%.0f\n", leg, med(rps, n), med(p50, n), med(p99, n), e, med(o, n) }' "$WORK/rounds.tsv"
	done
}

write_doc() {
	local report=$1 doc=$2
	if [[ ! -f $doc ]] || ! grep -q '^<!-- bench-shadow:begin -->' "$doc" || ! grep -q '^<!-- bench-shadow:end -->' "$doc"; then
		{
			[[ -s $doc ]] && echo
			echo "## Shadow traffic"
			echo
			echo "<!-- bench-shadow:begin -->"
			echo "<!-- bench-shadow:end -->"
		} >>"$doc"
	fi
	awk -v report="$report" '
		/^<!-- bench-shadow:begin -->/ { print; while ((getline l < report) > 0) print l; skip = 1; next }
		/^<!-- bench-shadow:end -->/ { skip = 0 }
		!skip { print }' "$doc" >"$doc.tmp"
	cat "$doc.tmp" >"$doc"
	rm -f "$doc.tmp"
}

main() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/ficus-bench-shadow.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	chmod 0711 "$WORK"
	mkdir -p "$WORK/bin"
	: >"$WORK/rounds.tsv"
	[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer, got '$BENCH_ROUNDS'"

	need_pkg wrk wrk
	need_pkg nginx nginx-light
	need_pkg curl curl

	log "==> building bench/upstream and ./cmd/ficus into $WORK/bin"
	"$GO" build -o "$WORK/bin/upstream" ./bench/upstream
	if [[ -n ${FICUS_BIN:-} ]]; then
		cp "$FICUS_BIN" "$WORK/bin/ficus"
	else
		"$GO" build -o "$WORK/bin/ficus" ./cmd/ficus || die "./cmd/ficus does not build"
	fi

	start upstream "$WORK/bin/upstream" -listen 127.0.0.1:0 -addr-file "$WORK/upstream.addr"
	UP_ADDR=$(wait_file "$WORK/upstream.addr" "$PID" upstream) || die "the upstream did not start"
	UP_PID=$PID
	start slow "$WORK/bin/upstream" -listen 127.0.0.1:0 -addr-file "$WORK/slow.addr" -sleep "$BENCH_SLEEP"
	SLOW_PID=$PID
	SLOW_ADDR=$(wait_file "$WORK/slow.addr" "$PID" slow) || die "the sleeping target did not start"
	log "==> upstream on $UP_ADDR, target sleeping $BENCH_SLEEP on $SLOW_ADDR"

	local round leg shadow_note= order
	for ((round = 1; round <= BENCH_ROUNDS; round++)); do
		# Swap the Ficus pair every round so that a drift in background load
		# does not always favour the same one.
		order=("${LEGS[@]}")
		if ((round % 2 == 0 && ${#order[@]} > 1)); then order=("${order[1]}" "${order[0]}" "${order[@]:2}"); fi
		for leg in "${order[@]}"; do
			log "[round $round/$BENCH_ROUNDS] $leg: warming up $BENCH_WARMUP, measuring $BENCH_DURATION"
			start_leg "$leg"
			measure "$leg" "$round"
			if [[ $leg == ficus-100 && -z $shadow_note ]]; then shadow_note=$(shadow_counts); fi
			stop_started "$LEG_PID"
		done
	done

	local med report
	med=$(medians)
	report="$WORK/report.md"
	{
		echo "Measured $(date -u +%Y-%m-%d) with \`bench/shadow.sh\` (BENCH_DURATION=$BENCH_DURATION BENCH_WARMUP=$BENCH_WARMUP BENCH_ROUNDS=$BENCH_ROUNDS BENCH_SLEEP=$BENCH_SLEEP):"
		echo
		echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr); shared with other work"
		echo "- versions: $("$GO" env GOVERSION), nginx $(nginx -v 2>&1 | sed 's/^nginx version: nginx\///'), wrk $({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')"
		echo "- load: \`wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION --timeout $BENCH_TIMEOUT --latency -s bench/wrk.lua URL\`, after a $BENCH_WARMUP warm-up; legs interleaved, medians of $BENCH_ROUNDS rounds"
		echo "- shadow target: \`bench/upstream -sleep $BENCH_SLEEP\`; Ficus shadow: percent 100, timeout 10s, concurrency $BENCH_SHADOW_CONCURRENCY"
		[[ -n $shadow_note ]] && echo "- Ficus shadow results during the first 100% leg (ficus_shadow_requests_total): $shadow_note"
		echo
		echo "| leg | requests/s | p50 ms | p99 ms | errors | other load % |"
		echo "|---|---:|---:|---:|---:|---:|"
		awk -F'\t' '{ printf "| %s | %s | %.2f | %.2f | %s | %s |\n", $1, $2, $3 / 1000, $4 / 1000, $5, $6 }' <<<"$med"
		echo
		echo "Per round (legs of a round run back to back; the two Ficus legs swap order every round):"
		echo
		echo "| round | leg | requests/s | p99 ms | other load % |"
		echo "|---:|---|---:|---:|---:|"
		awk -F'\t' '{ printf "| %s | %s | %s | %.2f | %s |\n", $2, $1, $3, $5 / 1000, $7 }' "$WORK/rounds.tsv"
		echo
		awk -F'\t' '
			function med(a, n,   i, j, t) {
				for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
				return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
			}
			{ rps[$1, $2] = $3; p99[$1, $2] = $5; if ($2 > rounds) rounds = $2 }
			END {
				# Paired per round: the two Ficus legs ran back to back, so
				# a drift of the background load between rounds cancels out.
				for (r = 1; r <= rounds; r++) {
					if (p99["ficus-0", r] > 0) pr[++np] = p99["ficus-100", r] / p99["ficus-0", r]
					if (rps["ficus-0", r] > 0) rr[++nr] = rps["ficus-100", r] / rps["ficus-0", r]
					if (rps["nginx-mirror", r] > 0) mr[++nm] = rps["ficus-100", r] / rps["nginx-mirror", r]
					if (rps["nginx", r] > 0) nn[++nx] = rps["nginx-mirror", r] / rps["nginx", r]
				}
				p = np ? med(pr, np) : 0; q = nr ? med(rr, nr) : 0; m = nm ? med(mr, nm) : 0; n = nx ? med(nn, nx) : 0
				printf "Medians of the per-round ratios:\n\n"
				printf "- Ficus p99 with 100%% shadowing / without: %.3f (target ≤ 1.05: %s)\n", p, (p > 0 && p <= 1.05 ? "met" : "not met")
				printf "- Ficus requests/s with 100%% shadowing / without: %.3f\n", q
				printf "- Ficus requests/s shadowing 100%% / nginx mirroring 100%%: %.0f (target ≥ 2: %s)\n", m, (m >= 2 ? "met" : "not met")
				printf "- nginx requests/s mirroring / not mirroring: %.4f (1/%.0f): nginx finishes a request only when its mirror subrequest has, so each keep-alive connection waits out the sleep of the target\n", n, (n > 0 ? 1 / n : 0)
			}' "$WORK/rounds.tsv"
	} >"$report"
	cat "$report"
	if [[ -n $BENCH_DOC ]]; then
		write_doc "$report" "$BENCH_DOC"
		log "==> results written to $BENCH_DOC"
	fi
}

main "$@"
