#!/usr/bin/env bash
# gRPC unary through bulwark vs direct to one ranking replica, and the per-request balancing cost
# of ROUND_ROBIN vs PEAK_EWMA. A benchmark, not a test: it prints numbers and asserts nothing.
#
#   bench/grpc-lb/run.sh [BUILD_DIR]          (default build; needs bulwark, ranking-server and
#                                              bulwark-loadgen built there, and h2load on PATH)
#
# Environment: DURATION (s, default 10), RATE (open-loop calls/s, default 1000), STREAMS (h2load
# concurrent streams on its one connection, default 32), MODEL_COST_US (replica latency model,
# default 0 = only the real ranking work), WORKERS (bulwark runtime.concurrency, default 1),
# OUT (results directory, default a fresh mktemp dir).
#
# Per scenario, two loads over ONE HTTP/2 connection:
#   saturated  h2load -c 1 -m STREAMS for DURATION s: the most calls/s, and p50/p99 from its
#              per-request log (closed loop, so latency includes queueing at saturation);
#   paced      bulwark-loadgen --protocol grpc at RATE calls/s for DURATION s: p50/p99 measured
#              from each call's intended send time (open loop, no coordinated omission), with
#              grpc-status checked on every answer.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
DURATION=${DURATION:-10}
RATE=${RATE:-1000}
STREAMS=${STREAMS:-32}
MODEL_COST_US=${MODEL_COST_US:-0}
WORKERS=${WORKERS:-1}
OUT=${OUT:-$(mktemp -d /tmp/bulwark-grpc-lb.XXXXXX)}
mkdir -p "$OUT"

BULWARK=$BUILD/proxy/bulwark
SERVER=$BUILD/examples/ranking/ranking-server
LOADGEN=$BUILD/bench/loadgen/bulwark-loadgen
for bin in "$BULWARK" "$SERVER" "$LOADGEN"; do
  [[ -x $bin ]] || { echo "missing $bin: ninja -C $BUILD bulwark ranking-server bulwark-loadgen" >&2; exit 2; }
done
command -v h2load >/dev/null || { echo "h2load not found (Debian: apt-get install nghttp2-client)" >&2; exit 2; }

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_line FILE REGEX: prints the first matching line of FILE once it appears (10 s at most).
wait_line() {
  for _ in $(seq 200); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for /$2/ in $1" >&2
  cat "$1" >&2
  return 1
}

# RankRequest{tenant_id: "tenantA", user_id: "user-1", limit: 10} in protobuf wire form; h2load
# needs the 5-byte gRPC frame (flag 0, length 19) in front, bulwark-loadgen adds it itself.
printf '\x0a\x07tenantA\x12\x06user-1\x18\x0a' > "$OUT/rank_request.bin"
printf '\x00\x00\x00\x00\x13' | cat - "$OUT/rank_request.bin" > "$OUT/rank_request.grpc"

REPLICAS=()
for i in 0 1 2; do
  "$SERVER" --port 0 --replica-id "replica-$i" --control-port -1 --model-cost-us "$MODEL_COST_US" \
    > "$OUT/replica-$i.out" 2> "$OUT/replica-$i.log" &
  PIDS+=($!)
done
for i in 0 1 2; do
  line=$(wait_line "$OUT/replica-$i.out" 'listening on 127\.0\.0\.1:[0-9]+')
  REPLICAS+=("${line##*listening on }")
done

# start_bulwark NAME POLICY ENDPOINT...: sets BULWARK_PORT (public listener) and BULWARK_PID.
start_bulwark() {
  local name=$1 policy=$2
  shift 2
  local cfg=$OUT/$name.yaml
  {
    echo "apiVersion: bulwark.dev/v1alpha1"
    echo "kind: ProxyConfig"
    echo "metadata: {name: $name}"
    echo "admin: {address: 127.0.0.1:0}"
    echo "runtime: {concurrency: $WORKERS, drain: {minDuration: 0s, timeout: 5s}}"
    echo "listeners:"
    echo "- {name: public, address: 127.0.0.1:0, protocol: h2c}"
    echo "upstreams:"
    echo "- name: ranking"
    echo "  protocol: grpc"
    echo "  loadBalancer: {simple: $policy}"
    echo "  endpoints:"
    echo "    static:"
    for ep in "$@"; do echo "    - address: \"$ep\""; done
    echo "routes:"
    echo "- name: all"
    echo "  match: {path: {prefix: /}}"
    echo "  upstream: ranking"
    echo "  timeouts: {request: 10s}"
  } > "$cfg"
  "$BULWARK" run -c "$cfg" --log-level warn > "$OUT/$name.out" 2> "$OUT/$name.log" &
  BULWARK_PID=$!
  PIDS+=("$BULWARK_PID")
  local line
  line=$(wait_line "$OUT/$name.out" 'listener public listening on 127\.0\.0\.1:[0-9]+')
  BULWARK_PORT=${line##*:}
}

# percentile FILE Q: nearest-rank percentile (ms) of h2load's per-request log (3rd column, us).
percentile() {
  awk '{print $3}' "$1" | sort -n | awk -v q="$2" '{v[NR]=$1} END {
    if (NR == 0) { print "nan"; exit }
    r = int(q * NR + 0.999999); if (r < 1) r = 1; if (r > NR) r = NR; printf "%.2f", v[r] / 1000 }'
}

RESULTS=$OUT/results.jsonl
: > "$RESULTS"
printf '\n| %-24s | %10s | %8s | %8s | %10s | %8s | %8s | %6s |\n' scenario "sat. rps" "sat. p50" "sat. p99" "paced rps" "p50 ms" "p99 ms" errors
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..26})" "$(printf -- '-%.0s' {1..12})" \
  "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..12})" \
  "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..8})"

# measure NAME TARGET: both loads against HOST:PORT, one table row and one JSON line.
measure() {
  local name=$1 target=$2
  local h2log=$OUT/$name.h2load.log
  # Saturated, closed loop: h2load cannot read grpc-status, so paced (below) is the error check.
  h2load -c 1 -m "$STREAMS" -D "$DURATION" --warm-up-time 1 \
    -H 'content-type: application/grpc' -H 'te: trailers' -d "$OUT/rank_request.grpc" \
    --log-file "$h2log" "http://$target/ranking.v1.RankingService/Rank" > "$OUT/$name.h2load.txt" 2>&1
  local sat_rps sat_p50 sat_p99
  sat_rps=$(sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$OUT/$name.h2load.txt")
  sat_p50=$(percentile "$h2log" 0.50)
  sat_p99=$(percentile "$h2log" 0.99)
  # Paced, open loop, one connection.
  "$LOADGEN" --target "$target" --protocol grpc --connections 1 \
    --grpc-method /ranking.v1.RankingService/Rank --body-file "$OUT/rank_request.bin" \
    --rate "$RATE" --duration "${DURATION}s" --json-out "$OUT/$name.loadgen.json" --quiet
  local paced
  paced=$(python3 - "$OUT/$name.loadgen.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))["total"]
l = t["latency_ms"]
errors = t["completed"] - t["ok"]
print(f'{t["achieved_rps"]:.0f} {l["p50"]:.2f} {l["p99"]:.2f} {errors} {t["ok"]}')
EOF
)
  read -r paced_rps p50 p99 errors ok <<< "$paced"
  printf '| %-24s | %10.0f | %8s | %8s | %10s | %8s | %8s | %6s |\n' "$name" "$sat_rps" "$sat_p50" "$sat_p99" \
    "$paced_rps" "$p50" "$p99" "$errors"
  printf '{"scenario":"%s","saturated":{"rps":%s,"p50_ms":%s,"p99_ms":%s,"streams":%s},"paced":{"rate":%s,"achieved_rps":%s,"p50_ms":%s,"p99_ms":%s,"ok":%s,"errors":%s}}\n' \
    "$name" "$sat_rps" "$sat_p50" "$sat_p99" "$STREAMS" "$RATE" "$paced_rps" "$p50" "$p99" "$ok" "$errors" >> "$RESULTS"
}

stop_bulwark() {
  kill "$BULWARK_PID" 2>/dev/null || true
  wait "$BULWARK_PID" 2>/dev/null || true
}

measure "direct-1-replica" "${REPLICAS[0]}"

start_bulwark rr-1 ROUND_ROBIN "${REPLICAS[0]}"
measure "bulwark-rr-1-replica" "127.0.0.1:$BULWARK_PORT"
stop_bulwark

start_bulwark rr-3 ROUND_ROBIN "${REPLICAS[@]}"
measure "bulwark-rr-3-replicas" "127.0.0.1:$BULWARK_PORT"
stop_bulwark

start_bulwark ewma-3 PEAK_EWMA "${REPLICAS[@]}"
measure "bulwark-ewma-3-replicas" "127.0.0.1:$BULWARK_PORT"
stop_bulwark

echo
echo "duration ${DURATION}s per load, paced rate ${RATE}/s, h2load streams ${STREAMS}, one connection;" \
  "replicas --model-cost-us ${MODEL_COST_US}; bulwark workers ${WORKERS}; build $BUILD"
echo "results: $RESULTS (and every tool's output in $OUT)"
