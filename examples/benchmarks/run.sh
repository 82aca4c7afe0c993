#!/usr/bin/env bash
# examples/benchmarks/run.sh: measure sixgate against its peers, all on
# 127.0.0.1, in one command, and write the tables to RESULTS.md.
#
#   examples/benchmarks/run.sh                 # about 11 minutes on 2 cores
#   QUICK=1 examples/benchmarks/run.sh         # shorter runs (a smoke test)
#
# Environment:
#   OUT=DIR        where binaries, logs, profiles and results.jsonl go (default: a new /tmp dir)
#   RESULTS_MD=F   the Markdown report (default: examples/benchmarks/RESULTS.md)
#   PIN=0|1        pin servers to CPU 0 and the load to CPU 1 with taskset (default 1)
#   PROFILE=0|1    save sixgate CPU profiles of the thru, connrate and udp runs (default 0)
#   QUICK=0|1      shorter runs
#   ROUNDS=N       repeat each throughput, connection, UDP and TURN table N
#                  times, peers interleaved (the order rotated each round),
#                  and report medians (default 3; 1 with QUICK=1)
#   CONN_ROUNDS=N  rounds of the connection table, the noisiest (default 5
#                  when ROUNDS is 3 or more, else ROUNDS)
#
# Peers: direct loopback, armon/go-socks5 and pion/turn v2 (tiny programs in
# this folder, built from the module cache), crelay (the smallest SOCKS 5
# relay in C, crelay/crelay.c, built with cc: a floor for what relaying
# costs on this machine), Dante's danted and coturn's
# turnserver (Debian packages dante-server and coturn: when missing,
# .ci/setup installs them; when that fails the script exits non-zero), and
# sixgate's SOCKS 5, SOCKS 6 and TURN frontends with the direct backend.
# coturn's turnutils_uclient and turnutils_peer drive every TURN server.
# Only loopback addresses are used; every load is bounded in count and time.
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$(mktemp -d /tmp/sixgate-bench.XXXXXX)}
RESULTS_MD=${RESULTS_MD:-$ROOT/examples/benchmarks/RESULTS.md}
PIN=${PIN:-1}
PROFILE=${PROFILE:-0}
QUICK=${QUICK:-0}
ROUNDS=${ROUNDS:-$([ "$QUICK" = 1 ] && echo 1 || echo 3)}
CONN_ROUNDS=${CONN_ROUNDS:-$([ "$ROUNDS" -ge 3 ] && echo $((ROUNDS > 5 ? ROUNDS : 5)) || echo "$ROUNDS")}
mkdir -p "$OUT/bin" "$OUT/logs" "$OUT/prof"
chmod 755 "$OUT" "$OUT/logs"
RES=$OUT/results.jsonl
CMDS=$OUT/commands.txt
: >"$RES"
: >"$CMDS"
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf '\n== %s\n' "$*" >&2; }

# --- peers: install, never skip -------------------------------------------
missing() {
  local m=()
  for b in danted turnserver turnutils_uclient turnutils_peer taskset curl setpriv ss cc; do
    command -v "$b" >/dev/null || m+=("$b")
  done
  echo "${m[@]:-}"
}
if [ -n "$(missing)" ]; then
  say "missing: $(missing); running .ci/setup"
  bash .ci/setup || true
fi
if [ -n "$(missing)" ]; then
  echo "run.sh: missing peers or tools: $(missing) (Debian: dante-server, coturn, util-linux, curl, iproute2, gcc)" >&2
  exit 1
fi

# --- build ------------------------------------------------------------------
say "building sixgate, sixgate-bench and the peers"
BIN=$OUT/bin
go build -o "$BIN/sixgate" ./cmd/sixgate
go build -o "$BIN/sixgate-bench" ./cmd/sixgate-bench
go build -o "$BIN/armon" ./examples/benchmarks/armon
go build -o "$BIN/pionturn" ./examples/benchmarks/pionturn
cc -O2 -o "$BIN/crelay" examples/benchmarks/crelay/crelay.c

# --- limits and pinning -------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
ulimit -n 65536 2>/dev/null || true
NOFILE=$(ulimit -n)
# Each idle CONNECT holds two sockets in the gateway: stay under the limit.
IDLE_K=$(( (NOFILE - 200) / 2 ))
[ "$IDLE_K" -gt 10000 ] && IDLE_K=10000
IDLE_U=2000
if [ "$PIN" = 1 ]; then
  SRV=(taskset -c 0)
  LOAD=(taskset -c 1)
else
  SRV=()
  LOAD=()
fi

# --- durations ------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
  THRU_D=2s CONN_N=1000 UDP_D=2s TTFB_N=5 UC_N=200 IDLE_K=$(( IDLE_K < 2000 ? IDLE_K : 2000 )) IDLE_U=500
else
  THRU_D=6s CONN_N=5000 UDP_D=6s TTFB_N=30 UC_N=2000
fi

# --- process bookkeeping -------------------------------------------------------
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
# start NAME CMD...: run CMD in the background, log to $OUT/logs/NAME.log;
# sets $LAST to its pid.
start() {
  local name=$1
  shift
  "$@" >"$OUT/logs/$name.log" 2>&1 &
  LAST=$!
  PIDS+=("$LAST")
}
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
wait_port() { # wait_port PORT [tcp|udp]
  local i
  for i in $(seq 100); do
    if [ "${2:-tcp}" = udp ]; then
      ss -Hlun "sport = :$1" | grep -q . && return 0
    else
      ss -Hltn "sport = :$1" | grep -q . && return 0
    fi
    sleep 0.1
  done
  echo "run.sh: nothing listens on port $1 (${2:-tcp}); see $OUT/logs" >&2
  exit 1
}

FAILED=0
# bench LABEL SUBCOMMAND ARGS...: one load run; its result line goes to
# results.jsonl, its summary to the terminal.
bench() {
  local label=$1 sub=$2
  shift 2
  grep -qxF -- "sixgate-bench $sub -label $label $*" "$CMDS" ||
    echo "sixgate-bench $sub -label $label $*" >>"$CMDS"
  if ! "${LOAD[@]}" "$BIN/sixgate-bench" "$sub" -label "$label" "$@" >>"$RES" 2>"$OUT/logs/bench-$label.log"; then
    echo "FAILED: $label (see $OUT/logs/bench-$label.log)" >&2
    cat "$OUT/logs/bench-$label.log" >&2
    FAILED=1
  else
    tail -n 1 "$OUT/logs/bench-$label.log" >&2
  fi
}
# profile NAME SECONDS: sixgate CPU profile in the background (PROFILE=1).
PROF_PIDS=()
profile() {
  [ "$PROFILE" = 1 ] || return 0
  curl -s -o "$OUT/prof/$1.pb.gz" "http://127.0.0.1:$P_ADMIN/debug/pprof/profile?seconds=$2" &
  PROF_PIDS+=($!)
}

# rotated ROUND ROW...: run the rows (each one command line) starting with
# row ROUND-1 and wrapping around, so that over the rounds every peer runs
# in every place of the order (a row may pay for what the one before it
# left behind: TIME_WAIT sockets, a forking server still reaping).
rotated() {
  local r=$1 i n
  shift
  n=$#
  local rows=("$@")
  for ((i = 0; i < n; i++)); do
    eval "${rows[$(((i + r - 1) % n))]}"
  done
}

# --- ports ------------------------------------------------------------------
P_S6=21080 P_S5=21081 P_S6ANON=21082 P_ADMIN=21090 P_TURN=23478
P_ARMON=21181 P_DANTE=21281 P_CRELAY=21381 P_COTURN=23479 P_PION=23480 P_PEER=23490
P_ECHO=21001 P_SINK=21002 P_UECHO=21003         # targets, on the load's CPU
P_DELAY_S=21501 P_DELAY_D=21502
P_VIA6=21083                                    # SOCKS 6 through the socks6 backend to s6anon

# --- configurations ---------------------------------------------------------
cat >"$OUT/sixgate.hcl" <<EOF
admin {
  listen = "127.0.0.1:$P_ADMIN"
  pprof  = true
}
log {
  level = "warn"
}
limits {
  max_sessions              = 0
  max_associations          = 0
  max_associations_per_user = 0
  max_allocations_per_user  = 0
}
users "bench" {
  user "bench" {
    password = "bench-pass"
  }
}
# SOCKS 6 with 0-RTT username/password; SOCKS 5 clients on the same port.
frontend "socks6" "s6" {
  listen        = "127.0.0.1:$P_S6"
  users         = "bench"
  accept_socks5 = true
  window_size   = 1024
}
# Without authentication, like the armon and danted peers.
frontend "socks6" "s6anon" {
  listen = "127.0.0.1:$P_S6ANON"
}
frontend "socks5" "s5anon" {
  listen = "127.0.0.1:$P_S5"
}
frontend "turn" "turn" {
  listen          = "127.0.0.1:$P_TURN"
  realm           = "sixgate"
  users           = "bench"
  legacy_channels = true
}
# Through the socks6 upstream backend to this gateway's own s6anon: the
# idle.udp-via6 reading (both hops in one process).
frontend "socks6" "via6" {
  listen = "127.0.0.1:$P_VIA6"
}
backend "direct" "out" {
  bind_ipv4 = "127.0.0.1"
}
backend "socks6" "up6" {
  server = "127.0.0.1:$P_S6ANON"
}
route {
  frontends    = ["via6"]
  destinations = ["127.0.0.0/8"]
  backend      = "up6"
}
route {
  frontends    = ["s6", "s6anon", "s5anon", "turn"]
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
EOF
chmod 644 "$OUT/sixgate.hcl"
cat >"$OUT/danted.conf" <<EOF
logoutput: $OUT/logs/danted-internal.log
internal: 127.0.0.1 port = $P_DANTE
external: lo
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  log: error
}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect bind udpassociate udpreply bindreply
  log: error
}
EOF

start_sixgate() { # start_sixgate [user]
  if [ -n "${1:-}" ]; then
    start sixgate "${SRV[@]}" setpriv --reuid="$1" --regid=nogroup --clear-groups "$BIN/sixgate" run --config "$OUT/sixgate.hcl"
  else
    start sixgate "${SRV[@]}" "$BIN/sixgate" run --config "$OUT/sixgate.hcl"
  fi
  SG=$LAST
  wait_port $P_S6
  wait_port $P_ADMIN
  wait_port $P_TURN udp
}

# --- servers ------------------------------------------------------------------
say "starting peers (PIN=$PIN, RLIMIT_NOFILE=$NOFILE)"
start serve "${LOAD[@]}" "$BIN/sixgate-bench" serve -tcp-echo 127.0.0.1:$P_ECHO -tcp-sink 127.0.0.1:$P_SINK -udp-echo 127.0.0.1:$P_UECHO -duration 30m
start armon "${SRV[@]}" "$BIN/armon" -listen 127.0.0.1:$P_ARMON
ARMON=$LAST
start danted "${SRV[@]}" danted -f "$OUT/danted.conf" -N 1 -p "$OUT/danted.pid"
DANTE=$LAST
start crelay "${SRV[@]}" "$BIN/crelay" 127.0.0.1 $P_CRELAY
CRELAY=$LAST
start_sixgate
wait_port $P_ECHO
wait_port $P_ARMON
wait_port $P_DANTE
wait_port $P_CRELAY

# --- TCP throughput -----------------------------------------------------------
for streams in 1 4; do for round in $(seq "$ROUNDS"); do
  say "TCP throughput, $streams stream(s), $THRU_D each (round $round of $ROUNDS)"
  g=thru$streams
  rotated "$round" \
    'bench $g.direct thru -proto direct -streams $streams -duration $THRU_D -target 127.0.0.1:$P_SINK' \
    'bench $g.armon thru -proto socks5 -proxy 127.0.0.1:$P_ARMON -streams $streams -duration $THRU_D -target 127.0.0.1:$P_SINK -server-pid $ARMON' \
    'bench $g.danted thru -proto socks5 -proxy 127.0.0.1:$P_DANTE -streams $streams -duration $THRU_D -target 127.0.0.1:$P_SINK -server-pid $DANTE' \
    'bench $g.crelay thru -proto socks5 -proxy 127.0.0.1:$P_CRELAY -streams $streams -duration $THRU_D -target 127.0.0.1:$P_SINK -server-pid $CRELAY' \
    'bench $g.sixgate-s5 thru -proto socks5 -proxy 127.0.0.1:$P_S5 -streams $streams -duration $THRU_D -target 127.0.0.1:$P_SINK -server-pid $SG' \
    'profile $g-sixgate-s6 5; bench $g.sixgate-s6 thru -proto socks6 -proxy 127.0.0.1:$P_S6ANON -streams $streams -duration $THRU_D -target 127.0.0.1:$P_SINK -server-pid $SG'
done; done

# --- new connections per second --------------------------------------------
for round in $(seq "$CONN_ROUNDS"); do
say "CONNECT rate, $CONN_N connections, 16 workers (round $round of $CONN_ROUNDS)"
rotated "$round" \
  'bench conn.direct connrate -proto direct -n $CONN_N -c 16 -target 127.0.0.1:$P_ECHO' \
  'bench conn.armon connrate -proto socks5 -proxy 127.0.0.1:$P_ARMON -n $CONN_N -c 16 -target 127.0.0.1:$P_ECHO -server-pid $ARMON' \
  'bench conn.danted connrate -proto socks5 -proxy 127.0.0.1:$P_DANTE -n $CONN_N -c 16 -target 127.0.0.1:$P_ECHO -server-pid $DANTE' \
  'bench conn.crelay connrate -proto socks5 -proxy 127.0.0.1:$P_CRELAY -n $CONN_N -c 16 -target 127.0.0.1:$P_ECHO -server-pid $CRELAY' \
  'bench conn.sixgate-s5 connrate -proto socks5 -proxy 127.0.0.1:$P_S5 -n $CONN_N -c 16 -target 127.0.0.1:$P_ECHO -server-pid $SG' \
  'profile conn-sixgate-s6 3; bench conn.sixgate-s6 connrate -proto socks6 -proxy 127.0.0.1:$P_S6ANON -n $CONN_N -c 16 -target 127.0.0.1:$P_ECHO -server-pid $SG' \
  'bench conn.sixgate-s6-auth connrate -proto socks6 -proxy 127.0.0.1:$P_S6 -user bench -pass bench-pass -n $CONN_N -c 16 -target 127.0.0.1:$P_ECHO -server-pid $SG' \
  'bench conn.sixgate-s6-session connrate -proto socks6 -proxy 127.0.0.1:$P_S6 -user bench -pass bench-pass -session -window 256 -n $CONN_N -c 16 -target 127.0.0.1:$P_ECHO -server-pid $SG'
done

# --- UDP ------------------------------------------------------------------------
say "UDP associations: 4 associations at 10k datagrams/s, then closed loop (32 in flight each, sent and read in batches), $UDP_D each"
for mode in rate max; do for round in $(seq "$ROUNDS"); do
  if [ $mode = rate ]; then g=udp10k flow=(-rate 10000); else g=udpmax flow=(-rate 0 -inflight 32 -batch 16); fi
  rotated "$round" \
    'bench $g.direct udp -proto direct -assocs 4 "${flow[@]}" -duration $UDP_D -target 127.0.0.1:$P_UECHO' \
    'bench $g.danted udp -proto socks5 -proxy 127.0.0.1:$P_DANTE -assocs 4 "${flow[@]}" -duration $UDP_D -target 127.0.0.1:$P_UECHO -server-pid $DANTE' \
    'bench $g.sixgate-s5 udp -proto socks5 -proxy 127.0.0.1:$P_S5 -assocs 4 "${flow[@]}" -duration $UDP_D -target 127.0.0.1:$P_UECHO -server-pid $SG' \
    'profile $g-sixgate-s6 4; bench $g.sixgate-s6 udp -proto socks6 -proxy 127.0.0.1:$P_S6ANON -assocs 4 "${flow[@]}" -duration $UDP_D -target 127.0.0.1:$P_UECHO -server-pid $SG'
done; done

# --- TURN -------------------------------------------------------------------------
say "TURN: turnutils_uclient, 50 clients x $UC_N messages of 100 bytes, 1 ms apart, through each server"
start peer "${LOAD[@]}" turnutils_peer -L 127.0.0.1 -p $P_PEER
start coturn "${SRV[@]}" turnserver -n --listening-ip=127.0.0.1 --listening-port=$P_COTURN --relay-ip=127.0.0.1 \
  --lt-cred-mech --user=bench:bench-pass --realm=sixgate --no-cli --allow-loopback-peers --no-tls --no-dtls \
  --log-file=stdout --simple-log --no-software-attribute
COTURN=$LAST
start pionturn "${SRV[@]}" "$BIN/pionturn" -listen 127.0.0.1:$P_PION
PION=$LAST
wait_port $P_COTURN udp
wait_port $P_PION udp
wait_port $P_PEER udp
UC=(-u bench -w bench-pass -e 127.0.0.1 -r $P_PEER -m 50 -n $UC_N -l 100 -z 1 -c)
for round in $(seq "$ROUNDS"); do
# The SOCKS 6 UDP row: the same offered load as uclient, for CPU per
# datagram next to coturn: 50 associations, 4000 datagrams/s, in uclient's
# bursts (every client sends a few datagrams at the same ticks: 4 every
# 50 ms here).
rotated "$round" \
  'bench turn.coturn uclient -server-pid $COTURN -- turnutils_uclient "${UC[@]}" -p $P_COTURN 127.0.0.1' \
  'bench turn.pionturn uclient -server-pid $PION -- turnutils_uclient "${UC[@]}" -p $P_PION 127.0.0.1' \
  'bench turn.sixgate uclient -server-pid $SG -- turnutils_uclient "${UC[@]}" -p $P_TURN 127.0.0.1' \
  'bench turn.sixgate-s6-udp udp -proto socks6 -proxy 127.0.0.1:$P_S6ANON -assocs 50 -rate 4000 -tick 50ms -duration $UDP_D -target 127.0.0.1:$P_UECHO -server-pid $SG'
done
stop $COTURN
stop $PION

# --- time to first byte ---------------------------------------------------------
say "TTFB through a 20 ms one-way delay (RTT 40 ms), $TTFB_N samples each"
start delay-s "${LOAD[@]}" "$BIN/sixgate-bench" delay -listen 127.0.0.1:$P_DELAY_S -to 127.0.0.1:$P_S6 -delay 20ms
start delay-d "${LOAD[@]}" "$BIN/sixgate-bench" delay -listen 127.0.0.1:$P_DELAY_D -to 127.0.0.1:$P_ECHO -delay 20ms
wait_port $P_DELAY_S
wait_port $P_DELAY_D
bench ttfb.direct ttfb -proto direct -target 127.0.0.1:$P_DELAY_D -rtt 40ms -n $TTFB_N
bench ttfb.socks6-0rtt-auth ttfb -proto socks6 -proxy 127.0.0.1:$P_DELAY_S -user bench -pass bench-pass -target 127.0.0.1:$P_ECHO -rtt 40ms -n $TTFB_N
bench ttfb.socks6-session-token ttfb -proto socks6 -proxy 127.0.0.1:$P_DELAY_S -user bench -pass bench-pass -session -window 64 -target 127.0.0.1:$P_ECHO -rtt 40ms -n $TTFB_N
bench ttfb.socks5-auth ttfb -proto socks5 -proxy 127.0.0.1:$P_DELAY_S -user bench -pass bench-pass -target 127.0.0.1:$P_ECHO -rtt 40ms -n $TTFB_N

# --- idle sessions: memory, descriptors, goroutines ---------------------------
# A fresh gateway for each reading, so the baseline is a clean process.
stop $ARMON
stop $DANTE
stop $CRELAY
say "idle: $IDLE_K CONNECT sessions, then $IDLE_U UDP associations (fresh gateway each)"
stop $SG
start_sixgate
bench idle.connect idle -proto socks6 -proxy 127.0.0.1:$P_S6ANON -k $IDLE_K -churn 1 -c 64 -target 127.0.0.1:$P_ECHO -server-pid $SG -admin 127.0.0.1:$P_ADMIN
stop $SG
start_sixgate
bench idle.udp idle -proto socks6 -proxy 127.0.0.1:$P_S6ANON -k 0 -udp $IDLE_U -churn 1 -c 64 -udp-target 127.0.0.1:$P_UECHO -server-pid $SG -admin 127.0.0.1:$P_ADMIN
stop $SG
# The same through the socks6 upstream backend into the same gateway: each
# association is two (the via6 frontend's through the backend, and s6anon's
# to the target), and both park.
start_sixgate
bench idle.udp-via6 idle -proto socks6 -proxy 127.0.0.1:$P_VIA6 -k 0 -udp $IDLE_U -churn 1 -c 64 -udp-target 127.0.0.1:$P_UECHO -server-pid $SG -admin 127.0.0.1:$P_ADMIN
stop $SG
# Once as an unprivileged user: pipe buffers are limited per user
# (fs.pipe-user-pages-soft), which would show if idle sessions held pipes.
start_sixgate nobody
bench idle.connect-nobody idle -proto socks6 -proxy 127.0.0.1:$P_S6ANON -k $IDLE_K -churn 1 -c 64 -target 127.0.0.1:$P_ECHO -server-pid $SG -admin 127.0.0.1:$P_ADMIN
stop $SG
# Idle TURN allocations (pion/turn's client, one per UDP socket, each
# proven with one datagram echoed through its relayed address): coturn,
# pion/turn and sixgate, each freshly started.
say "idle: $IDLE_U TURN allocations in coturn, pion/turn and sixgate (fresh server each)"
IT=(-proto turn -user bench -pass bench-pass -k 0 -udp $IDLE_U -churn 1 -c 64 -udp-target 127.0.0.1:$P_UECHO)
start coturn "${SRV[@]}" turnserver -n --listening-ip=127.0.0.1 --listening-port=$P_COTURN --relay-ip=127.0.0.1 \
  --lt-cred-mech --user=bench:bench-pass --realm=sixgate --no-cli --allow-loopback-peers --no-tls --no-dtls \
  --log-file=stdout --simple-log --no-software-attribute
COTURN=$LAST
wait_port $P_COTURN udp
bench idleturn.coturn idle "${IT[@]}" -proxy 127.0.0.1:$P_COTURN -server-pid $COTURN
stop $COTURN
start pionturn "${SRV[@]}" "$BIN/pionturn" -listen 127.0.0.1:$P_PION
PION=$LAST
wait_port $P_PION udp
bench idleturn.pionturn idle "${IT[@]}" -proxy 127.0.0.1:$P_PION -server-pid $PION
stop $PION
start_sixgate
bench idleturn.sixgate idle "${IT[@]}" -proxy 127.0.0.1:$P_TURN -server-pid $SG -admin 127.0.0.1:$P_ADMIN
stop $SG
for p in "${PROF_PIDS[@]:-}"; do
  [ -n "$p" ] && wait "$p" 2>/dev/null || true
done

# --- report ------------------------------------------------------------------
T_END=$(date +%s)
{
  echo "# sixgate benchmark results"
  echo
  echo "Written by \`examples/benchmarks/run.sh\` (see README.md for what each table measures)."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); run took $((T_END - T_START)) s"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r)"
  echo "- load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) (the machine was shared with other work: compare ratios within a table, not across runs)"
  echo "- $(go version | cut -d' ' -f3-); sixgate $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- . ':!examples/benchmarks/RESULTS.md' 2>/dev/null || echo ' with uncommitted changes')"
  echo "- peers: armon/go-socks5 $(go list -m -f '{{.Version}}' github.com/armon/go-socks5), crelay ($(cc --version | head -1), -O2), pion/turn $(go list -m -f '{{.Version}}' github.com/pion/turn/v2), $(danted -v 2>&1 | head -1 | cut -d' ' -f1-2), coturn $(dpkg-query -W -f='${Version}' coturn 2>/dev/null || echo '?')"
  if [ "$PIN" = 1 ]; then
    echo "- pinning: every server (sixgate, armon, crelay, danted, coturn, pion/turn) on CPU 0 with \`taskset -c 0\`; the load tool, its sink/echo targets, the delay relays, turnutils_uclient and turnutils_peer on CPU 1. The direct baseline is the load core alone (client and target both on CPU 1): what the path could carry if the proxy cost nothing"
  else
    echo "- pinning: none"
  fi
  echo "- RLIMIT_NOFILE: $NOFILE (the hard limit here), so the idle CONNECT reading holds $IDLE_K sessions"
  echo
  echo "## Tables"
  echo
  echo "Ratios: \"vs direct\" is the first row of the table (the physical limit on loopback);"
  echo "\"vs armon/danted/coturn\" is the reference peer. CPU is the server process tree's"
  echo "utime+stime over the run, per GiB relayed, per 1000 connections, or per million"
  echo "datagrams relayed (both directions counted). Each of these tables was run $ROUNDS"
  echo "time(s) (the conn table $CONN_ROUNDS), the peers interleaved; a row is the median (the figure and, separately,"
  echo "the CPU per unit) with the range of the figure in its details, and the ratios"
  echo "to the reference peer within each round (steadier when the machine's speed drifts)."
  echo "\"CPUs busy\" (closed-loop tables) is how busy CPU 0 and CPU 1 were during the row:"
  echo "near 100% on the load's CPU, the load ran out before the server did."
  echo "crelay is a floor, not a product: the smallest SOCKS 5 relay in C (one epoll"
  echo "thread, splice for bulk, no authentication, limits, logs or metrics); the other"
  echo "rows of the thru and conn tables get per-round ratios to it too."
  echo
  "$BIN/sixgate-bench" report -in "$RES" -also pionturn,crelay
  echo "## Commands"
  echo
  echo "Servers:"
  echo
  echo '```sh'
  echo "${SRV[*]} sixgate run --config sixgate.hcl       # the configuration is below"
  echo "${SRV[*]} armon -listen 127.0.0.1:$P_ARMON"
  echo "${SRV[*]} crelay 127.0.0.1 $P_CRELAY                  # cc -O2 -o crelay examples/benchmarks/crelay/crelay.c"
  echo "${SRV[*]} danted -f danted.conf -N 1              # socksmethod none, udpassociate allowed"
  echo "${SRV[*]} turnserver -n --listening-ip=127.0.0.1 --listening-port=$P_COTURN --relay-ip=127.0.0.1 --lt-cred-mech --user=bench:bench-pass --realm=sixgate --no-cli --allow-loopback-peers --no-tls --no-dtls"
  echo "${SRV[*]} pionturn -listen 127.0.0.1:$P_PION"
  echo "${LOAD[*]} sixgate-bench serve -tcp-echo 127.0.0.1:$P_ECHO -tcp-sink 127.0.0.1:$P_SINK -udp-echo 127.0.0.1:$P_UECHO"
  echo "${LOAD[*]} turnutils_peer -L 127.0.0.1 -p $P_PEER"
  echo "${LOAD[*]} sixgate-bench delay -listen 127.0.0.1:$P_DELAY_S -to 127.0.0.1:$P_S6 -delay 20ms"
  echo "${LOAD[*]} sixgate-bench delay -listen 127.0.0.1:$P_DELAY_D -to 127.0.0.1:$P_ECHO -delay 20ms"
  echo '```'
  echo
  echo "Loads (each under \`${LOAD[*]}\`; \`-server-pid\` is the server's pid):"
  echo
  echo '```sh'
  cat "$CMDS"
  echo '```'
  echo
  echo "sixgate.hcl:"
  echo
  echo '```hcl'
  cat "$OUT/sixgate.hcl"
  echo '```'
} >"$RESULTS_MD"
say "done in $((T_END - T_START)) s: $RESULTS_MD (raw lines: $RES, logs: $OUT/logs)"
exit $FAILED
