#!/usr/bin/env bash
# The main job: builds bulwark and the example backends, starts two recommendation replicas
# and bulwark in front of them, and runs a short load test direct vs through bulwark.
# Every process it starts is stopped on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
./scripts/build.sh build
BIN=$ROOT/build
DURATION=${DEMO_DURATION:-10}
WORK=$(mktemp -d /tmp/bulwark-demo.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# wait_for_line FILE PATTERN: prints the first match, waiting up to 10 s.
wait_for_line() {
  for _ in $(seq 1 200); do
    if line=$(grep -m1 -E "$2" "$1" 2>/dev/null); then echo "$line"; return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

BACKENDS=()
for i in 1 2; do
  "$BIN/examples/recommendation/recommendation-server" --port 0 --replica-id "rec-$i" \
    >"$WORK/rec-$i.out" 2>"$WORK/rec-$i.err" &
  PIDS+=($!)
  addr=$(wait_for_line "$WORK/rec-$i.out" 'listening on' | grep -oE '127\.0\.0\.1:[0-9]+')
  BACKENDS+=("$addr")
done

cat >"$WORK/bulwark.yaml" <<YAML
apiVersion: bulwark.dev/v1alpha1
kind: ProxyConfig
metadata: {name: demo}
admin: {address: 127.0.0.1:0}
runtime: {concurrency: 1, drain: {minDuration: 0s, timeout: 5s}}
listeners:
- {name: public, address: 127.0.0.1:0, protocol: auto}
upstreams:
- name: recommendation
  protocol: http1
  endpoints:
    static: [{address: "${BACKENDS[0]}"}, {address: "${BACKENDS[1]}"}]
  loadBalancer: {simple: LEAST_REQUEST}
routes:
- name: recommend
  match: {path: {prefix: /v1/}}
  upstream: recommendation
  timeouts: {request: 2s}
YAML

"$BIN/proxy/bulwark" check -c "$WORK/bulwark.yaml"
"$BIN/proxy/bulwark" run -c "$WORK/bulwark.yaml" >"$WORK/bulwark.out" 2>"$WORK/bulwark.err" &
PIDS+=($!)
PROXY=$(wait_for_line "$WORK/bulwark.out" 'listener public listening on' | grep -oE '127\.0\.0\.1:[0-9]+')
ADMIN=$(wait_for_line "$WORK/bulwark.out" 'admin listening on' | grep -oE '127\.0\.0\.1:[0-9]+')

cat >"$WORK/recommend.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"tenant":"tenantA","surface":"home","user_id":"u1","k":10}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Tenant-Id"] = "tenantA"
LUA

run_load() {
  wrk -t1 -c32 -d"${DURATION}s" --latency -s "$WORK/recommend.lua" "http://$1/v1/recommend" >"$WORK/$2.wrk"
  python3 - "$WORK/$2.wrk" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
p50 = re.search(r"50%\s+(\S+)", text).group(1)
p99 = re.search(r"99%\s+(\S+)", text).group(1)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors:.*", text)
print(f"{sys.argv[2]:>16}  rps {float(rps):>10.0f}  p50 {p50:>9}  p99 {p99:>9}  non-2xx {non2xx.group(1) if non2xx else 0}  {errors.group(0) if errors else ''}")
PY
}

echo
echo "Load: ${DURATION}s, 32 connections, POST /v1/recommend (k=10)"
run_load "${BACKENDS[0]}" direct
run_load "$PROXY" via-bulwark
echo
echo "bulwark metrics (http://$ADMIN/metrics):"
curl -s "http://$ADMIN/metrics" | grep -E '^bulwark_requests_total\{.*route="recommend"' | grep -v ' 0$' || true
echo
echo "Work files: $WORK"
