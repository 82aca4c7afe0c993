#!/usr/bin/env bash
# Runs the legacy SOCKS 5 migration example end to end on loopback: a web
# server, the core SOCKS 6 proxy, the edge gateway, and curl as the legacy
# SOCKS 5 client — on the SOCKS 5 port and on the shared SOCKS 6 port. Exits
# non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bin="${SIXGATE_BIN:-}"
if [ -z "$bin" ]; then
  bin="$work/sixgate"
  (cd ../.. && go build -o "$bin" ./cmd/sixgate)
fi

wait_port() { # host port
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1:$2" >&2
  return 1
}

# A web server to reach.
mkdir -p "$work/www"
echo "hello through SOCKS 6" >"$work/www/index.html"
python3 -m http.server 18080 --bind 127.0.0.1 --directory "$work/www" >"$work/www.log" 2>&1 &
pids+=($!)

"$bin" validate --config core.hcl
"$bin" validate --config edge.hcl
"$bin" run --config core.hcl 2>"$work/core.log" &
pids+=($!)
"$bin" run --config edge.hcl 2>"$work/edge.log" &
pids+=($!)
wait_port 127.0.0.1 18080
wait_port 127.0.0.1 12080
wait_port 127.0.0.1 11080
wait_port 127.0.0.1 11081

fail() { echo "FAIL: $*" >&2; echo "--- edge log" >&2; cat "$work/edge.log" >&2; echo "--- core log" >&2; cat "$work/core.log" >&2; exit 1; }

got=$(curl -sS --max-time 10 --socks5-hostname 127.0.0.1:11080 --proxy-user app:app-secret http://localhost:18080/) || fail "curl via the SOCKS 5 port"
[ "$got" = "hello through SOCKS 6" ] || fail "unexpected body: $got"
echo "ok: SOCKS 5 client on the SOCKS 5 port, carried as SOCKS 6"

got=$(curl -sS --max-time 10 --socks5 127.0.0.1:11081 --proxy-user app:app-secret http://127.0.0.1:18080/) || fail "curl via the shared port"
[ "$got" = "hello through SOCKS 6" ] || fail "unexpected body: $got"
echo "ok: SOCKS 5 client on the shared SOCKS 6 port"

code=0
curl -sS --max-time 10 --socks5 127.0.0.1:11080 --proxy-user app:wrong http://127.0.0.1:18080/ >/dev/null 2>&1 || code=$?
[ "$code" = 97 ] || fail "wrong password: curl exit $code, want 97"
echo "ok: wrong password refused"

# The core saw SOCKS 6 sessions from the edge: its first request authenticated
# with the edge's credentials, later ones by session.
metrics=$(curl -sS http://127.0.0.1:19091/metrics)
echo "$metrics" | grep -q 'sixgate_auth_total{frontend="core",result="success"} 1' || fail "core did not authenticate the edge once"
echo "$metrics" | grep -q 'sixgate_auth_total{frontend="core",result="session"}' || fail "core saw no session reuse"
echo "ok: the edge reused its SOCKS 6 session on the core"
echo "legacy-socks5-migration: all checks passed"
