#!/usr/bin/env bash
# Runs the webrtc-relay example end to end on loopback with real clients:
# two pion/webrtc peers (relay-only ICE, TURN REST credentials and a static
# user) exchanging data-channel messages, and coturn's turnutils_uclient
# against turnutils_peer — first through the TURN edge that relays directly
# (gateway.hcl), then through the edge whose relays live on a SOCKS 6 core
# (gateway-core.hcl -> core.hcl). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"
work=$(mktemp -d)
pids=()
cleanup() {
  # SIGTERM drains (shutdown_grace = 2s in the configs); SIGKILL what is left.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 40); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bin="${SIXGATE_BIN:-}"
if [ -z "$bin" ]; then
  bin="$work/sixgate"
  (cd ../.. && go build -o "$bin" ./cmd/sixgate)
fi
# The peers program is built like the sixgate binary under test (with -race
# when it was), so that it reuses the packages already compiled for it.
race=()
if go version -m "$bin" 2>/dev/null | grep -Eq 'build[[:space:]]+-race=true'; then race=(-race); fi
(cd ../.. && go build "${race[@]}" -o "$work/peers" ./examples/webrtc-relay/peers)
for tool in turnutils_uclient turnutils_peer; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (Debian package coturn)" >&2; exit 1; }
done

wait_port() { # host port
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1:$2" >&2
  return 1
}
fail() {
  echo "FAIL: $*" >&2
  for l in edge edge-core core; do echo "--- $l log" >&2; cat "$work/$l.log" >&2 || true; done
  exit 1
}

for c in gateway.hcl gateway-core.hcl core.hcl; do "$bin" validate --config "$c" >/dev/null; done
"$bin" run --config core.hcl 2>"$work/core.log" &
pids+=($!)
"$bin" run --config gateway.hcl 2>"$work/edge.log" &
pids+=($!)
"$bin" run --config gateway-core.hcl 2>"$work/edge-core.log" &
pids+=($!)
turnutils_peer -L 127.0.0.1 -p 31500 >"$work/peer.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 31080 || fail "core did not start"
wait_port 127.0.0.1 31478 || fail "edge did not start"
wait_port 127.0.0.1 31479 || fail "edge-core did not start"
sleep 0.2 # turnutils_peer (UDP only) binds at start

edge='turn:127.0.0.1:31478?transport=udp'
edge_core='turn:127.0.0.1:31479?transport=udp'

# 1. WebRTC through the edge: peer a with TURN REST credentials, peer b as
# the static user.
"$work/peers" -a "$edge" -a-secret demo-rest-secret -a-user web-42 \
  -b "$edge" -b-user alice -b-password alice-s3cret -n 20 -timeout 25s ||
  fail "webrtc peers through the edge"
echo "ok: two WebRTC peers over relay-only ICE through sixgate -> direct"

# 2. coturn's client with REST credentials (-W secret, -u user), channels
# and Send indications, to turnutils_peer (an echo).
uclient() { # port, credentials..., extra args...
  local port=$1
  shift
  local out
  out=$(timeout 30 turnutils_uclient -e 127.0.0.1 -r 31500 -p "$port" -n 20 -m 2 -l 200 -z 5 "$@" 127.0.0.1 2>&1) ||
    { echo "$out" | tail -20 >&2; return 1; }
  echo "$out" | grep -q 'Total lost packets 0 (0.000000%)' || { echo "$out" | tail -20 >&2; return 1; }
}
uclient 31478 -W demo-rest-secret -u web-43 || fail "turnutils_uclient (channels) through the edge"
uclient 31478 -W demo-rest-secret -u web-43 -s || fail "turnutils_uclient (send) through the edge"
echo "ok: turnutils_uclient with TURN REST credentials through sixgate -> direct, no loss"

# 3. The same through the SOCKS 6 core: peer b's relay lives on the core, so
# every message crosses it both ways.
"$work/peers" -a "$edge" -a-secret demo-rest-secret -a-user web-44 \
  -b "$edge_core" -b-secret demo-rest-secret -b-user web-45 -n 20 -timeout 25s ||
  fail "webrtc peers through the edge and the core"
uclient 31479 -u alice -w alice-s3cret || fail "turnutils_uclient through the core"
echo "ok: WebRTC peers and turnutils_uclient through sixgate -> SOCKS 6 upstream -> direct"

# The core really carried the allocations: UDP associations from the edge.
metrics=$(curl -sS --max-time 5 http://127.0.0.1:31092/metrics) || fail "core metrics"
echo "$metrics" | grep -Eq 'sixgate_sessions_total\{command="udp",frontend="core",protocol="socks6",result="ok"\} [1-9]' ||
  fail "the core served no UDP association"
echo "$metrics" | grep -Eq 'sixgate_relayed_datagrams_total\{[^}]*frontend="core"[^}]*\} [1-9]' ||
  fail "the core relayed no datagram"
echo "ok: the core served the edge's allocations as SOCKS 6 UDP associations"
echo "webrtc-relay: all checks passed"
