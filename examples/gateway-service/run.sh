#!/usr/bin/env bash
# Runs the gateway-service example end to end on loopback: a certificate, the
# production-style config, bcrypt users, deny rules, per-user routes, the
# admin endpoints, a reload and a drain. Exits non-zero on any failure.
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

# The service runs in its own directory with its certificate.
cp gateway.hcl "$work/"
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=gateway.example" -addext "subjectAltName=IP:127.0.0.1,DNS:gateway.example" \
  -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" >/dev/null 2>&1
cd "$work"

wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1:$2" >&2
  return 1
}
fail() { echo "FAIL: $*" >&2; cat "$work/gateway.log" >&2; exit 1; }

mkdir -p www && echo "service ok" >www/index.html
python3 -m http.server 28080 --bind 127.0.0.1 --directory www >/dev/null 2>&1 &
pids+=($!)

"$bin" validate --config gateway.hcl
"$bin" run --config gateway.hcl 2>gateway.log &
gw=$!
pids+=($gw)
wait_port 127.0.0.1 29090
wait_port 127.0.0.1 21080
wait_port 127.0.0.1 28080

[ "$(curl -sS http://127.0.0.1:29090/readyz | head -1)" = ok ] || fail "readyz"
echo "ok: /readyz"

got=$(curl -sS --max-time 10 --socks5 127.0.0.1:21080 --proxy-user alice:alice-pw http://127.0.0.1:28080/) || fail "alice to this host"
[ "$got" = "service ok" ] || fail "body: $got"
echo "ok: alice (bcrypt) reaches a service on this host"

code=0; curl -sS --max-time 10 --socks5 127.0.0.1:21080 --proxy-user bob:bob-pw http://127.0.0.1:28080/ >/dev/null 2>&1 || code=$?
[ "$code" = 97 ] || fail "bob to this host: curl exit $code, want 97 (per-user route)"
echo "ok: bob may not reach this host (per-user route)"

code=0; curl -sS --max-time 10 --socks5 127.0.0.1:21080 --proxy-user alice:alice-pw http://10.1.2.3/ >/dev/null 2>&1 || code=$?
[ "$code" = 97 ] || fail "private range: curl exit $code, want 97 (deny rule)"
echo "ok: the deny rule holds for 10.0.0.0/8"

code=0; curl -sS --max-time 10 --socks5 127.0.0.1:21080 --proxy-user alice:nope http://127.0.0.1:28080/ >/dev/null 2>&1 || code=$?
[ "$code" = 97 ] || fail "wrong password: curl exit $code"
echo "ok: wrong password refused"

# The TLS listener speaks TLS.
retry() { for _ in 1 2 3 4 5; do "$@" && return 0; sleep 1; done; return 1; }
tls_ok() {
  timeout 10 openssl s_client -connect 127.0.0.1:21443 -servername gateway.example </dev/null 2>/dev/null |
    openssl x509 -noout -subject 2>/dev/null | grep -q gateway.example
}
retry tls_ok || fail "no TLS on 21443"
echo "ok: SOCKS 6 over TLS listener presents the certificate"

grep -q '"msg":"session closed"' gateway.log || fail "no JSON access log"
grep -q 'alice-pw\|bob-pw' gateway.log && fail "a password reached the log"
echo "ok: JSON access log without secrets"

kill -HUP "$gw"
reloaded() { curl -sS http://127.0.0.1:29090/metrics | grep -q 'sixgate_config_reloads_total{result="success"} 1'; }
retry reloaded || fail "reload"
echo "ok: reload"

kill -TERM "$gw"
wait "$gw" || fail "exit status $? after SIGTERM"
echo "ok: SIGTERM drained and exited 0"
echo "gateway-service: all checks passed"
