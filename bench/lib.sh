#!/usr/bin/env bash
# Helpers shared by bench/run.sh and bench/shadow.sh: logging, package
# installs, starting and stopping servers by PID, free ports, readiness
# waits and CPU accounting from /proc. Sourced, never run. Messages are
# prefixed with $BENCH_NAME (default "bench").

log() { printf '%s\n' "$*" >&2; }

die() {
	log "${BENCH_NAME:-bench}: $*"
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

# alive PID: the process exists and is not a zombie.
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
			log "${BENCH_NAME:-bench}: PID $pid ignored SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

# start NAME CMD... runs CMD in the background, its output in $WORK/NAME.log;
# the PID lands in STARTED and in the global PID.
start() {
	local name=$1
	shift
	${NICE[@]+"${NICE[@]}"} "$@" >"$WORK/$name.log" 2>&1 &
	PID=$!
	STARTED+=("$PID")
}

# wait_file FILE PID NAME: the address file of a program listening on port 0.
wait_file() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $1 ]] && {
			tr -d '\n' <"$1"
			return 0
		}
		alive "$2" || break
		sleep 0.1
	done
	log "${BENCH_NAME:-bench}: $3 did not start; its log:"
	tail -n 20 "$WORK/$3.log" >&2 || true
	return 1
}

# wait_http URL PID NAME: until URL answers 200, up to 30 s.
wait_http() {
	local i code
	for ((i = 0; i < 300; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H 'X-User-Id: bench-user-1' "$1" || true)
		[[ $code == 200 ]] && return 0
		alive "$2" || break
		sleep 0.1
	done
	log "${BENCH_NAME:-bench}: $3 did not answer 200 on $1 (last status ${code:-none}); its log:"
	tail -n 20 "$WORK/$3.log" >&2 || true
	return 1
}

# cpu_split PID... prints the processes' user and system clock ticks.
cpu_split() {
	local pid st f user=0 sys=0
	for pid in "$@"; do
		st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		# After "pid (comm) ", proc(5) field 3 (state) is f[0]: utime (14)
		# is f[11], stime (15) f[12]. comm may hold spaces, hence the cut.
		read -r -a f <<<"${st##*) }"
		user=$((user + f[11]))
		sys=$((sys + f[12]))
	done
	echo "$user $sys"
}

# cpu_ticks PID... sums user+system clock ticks of the processes.
cpu_ticks() {
	local user sys
	read -r user sys <<<"$(cpu_split "$@")"
	echo $((user + sys))
}

# family PID... prints each PID and its direct children (nginx's workers).
family() {
	local pid d st f
	for pid in "$@"; do
		echo "$pid"
		for d in /proc/[0-9]*; do
			st=$(cat "$d/stat" 2>/dev/null) || continue
			# After "pid (comm) ": state, ppid, ...
			read -r -a f <<<"${st##*) }"
			if [[ ${f[1]} == "$pid" ]]; then echo "${d#/proc/}"; fi
		done
	done
}

# field NAME LINE prints NAME's value from a "BENCH_RESULT a=1 b=2" line.
field() { sed -n "s/.*[[:space:]]$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# free_port prints a port nothing listens on, below the ephemeral range so
# that wrk's own outgoing connections cannot take it meanwhile.
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

# stop_started PID stops one process started by start() and forgets it.
stop_started() {
	local pid=$1 kept=() p
	stop_pid "$pid"
	for p in ${STARTED[@]+"${STARTED[@]}"}; do
		[[ $p == "$pid" ]] || kept+=("$p")
	done
	STARTED=(${kept[@]+"${kept[@]}"})
}

# wrk_cpu_seconds prints the CPU seconds of the children this shell reaped
# between the `times` snapshots $WORK/times.0 and $WORK/times.1: during the
# measured run, only wrk.
wrk_cpu_seconds() {
	awk 'function s(t,   p) { split(t, p, "m"); return p[1] * 60 + substr(p[2], 1, length(p[2]) - 1) }
		FNR == 2 { v = s($1) + s($2); if (NR == FNR) a = v; else b = v }
		END { printf "%.3f", b - a }' "$WORK/times.0" "$WORK/times.1"
}

# nginx_conf NAME PORT [MIRROR_ADDR] writes the reference proxy's config,
# optionally with its mirror directive sending every request to MIRROR_ADDR.
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
# Generated by the Ficus benchmarks (bench/lib.sh): the reference reverse proxy.
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
  # Fiber/fasthttp never close a busy keep-alive connection; nginx does
  # after 1000 requests by default. Raise it so both reuse connections alike.
  keepalive_requests 100000;
  upstream up {
    server $UP_ADDR;
    keepalive 64;
    keepalive_requests 100000;
  }
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

# WORK is the run's scratch directory; STARTED the PIDs it started. The
# EXIT trap (cleanup) stops every one of them by PID and removes WORK
# unless BENCH_KEEP=1.
WORK=
STARTED=()

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in ${STARTED[@]+"${STARTED[@]}"}; do
		stop_pid "$pid"
	done
	if [[ -n $WORK ]]; then
		if [[ $BENCH_KEEP == 1 ]]; then log "${BENCH_NAME:-bench}: kept $WORK"; else rm -rf "$WORK"; fi
	fi
	exit "$rc"
}

# AWK_MEDIAN is the awk prelude of every report table (bench/run.sh and
# bench/shadow.sh):
#
# med(a, n) sorts a[1..n] in place and returns its median (the mean of the
# middle two when n is even; 0 when n is 0), so after it a[1] and a[n] are
# the smallest and largest values.
#
# pick(a, b, rounds, sel) fills sel[1..] with the rounds 1..rounds in which
# leg a (and leg b, unless b is "") was measured, keeping only the rounds
# clean for both while at least one is, and returns how many; CLEAN is then
# the number of clean ones. It reads the program's have[leg, round] (the
# leg ran) and ok[leg, round] (the round was clean for it).
AWK_MEDIAN='
function med(a, n,   i, j, t) {
	if (n == 0) return 0
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
function pick(a, b, rounds, sel,   r, n, nc) {
	delete sel; n = 0; nc = 0
	for (r = 1; r <= rounds; r++) {
		if (!((a SUBSEP r) in have) || (b != "" && !((b SUBSEP r) in have))) continue
		sel[++n] = r
		if (ok[a, r] && (b == "" || ok[b, r])) nc++
	}
	CLEAN = nc
	if (nc == 0 || nc == n) return n
	n = 0
	for (r = 1; r <= rounds; r++)
		if (((a SUBSEP r) in have) && (b == "" || ((b SUBSEP r) in have)) && ok[a, r] && (b == "" || ok[b, r])) sel[++n] = r
	return n
}'
