#!/usr/bin/env bash
# CPU profile of bulwark (one worker) under the perf-compare load, pinned like bench.py's pin=split:
# load generator on core 0, backend nginx + bulwark on core 1. Samples bulwark only (perf record -p).
#
#   bench/perf/profile.sh h1      # wrk -t1 -c50 -> 28085 -> backend h1 28080
#   bench/perf/profile.sh h2h1    # h2load -c50 -m10 -> 28095 (h2c) -> backend h1 28080
#   bench/perf/profile.sh h2h2    # h2load -c50 -m10 -> 28096 (h2c) -> backend h2c 28090
#   bench/perf/profile.sh rate    # wrk + poisson.lua at ~5k req/s -> 28085 (CPU per request at moderate load)
#
# Writes $OUT/perf-MODE.data, a flat symbol report (perf-MODE-flat.txt), a report by shared object
# (perf-MODE-dso.txt) and the load generator's output (load-MODE.txt). Uses the software cpu-clock event
# (no hardware counters in this VM). Needs the Release build from bench/run-perf.sh and linux-perf.
set -euo pipefail
MODE="${1:-h1}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PERF_COMPARE="${PERF_COMPARE:-$(cd "$ROOT/.." && pwd)/shared/perf-compare}"
BIN="${BIN:-$ROOT/build-bench/proxy/bulwark}"
DURATION="${DURATION:-10}"
export PERFANCHOR_RUN="${PERFANCHOR_RUN:-/tmp/bulwark-profile}"
OUT="${OUT:-$PERFANCHOR_RUN}"
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "apt-get install -y linux-perf" >&2; exit 2; }

BULWARK_PID=""
cleanup() {
  if [[ -n "$BULWARK_PID" ]] && kill -0 "$BULWARK_PID" 2>/dev/null; then kill -TERM "$BULWARK_PID"; wait "$BULWARK_PID" 2>/dev/null || true; fi
  "$PERF_COMPARE/stop.sh" >/dev/null || true
}
trap cleanup EXIT
"$PERF_COMPARE/start.sh" >/dev/null
"$BIN" run -c "$ROOT/bench/perf/bulwark-perf.yaml" --log-level warn >"$OUT/bulwark-$MODE.out" 2>&1 &
BULWARK_PID=$!
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:28199/ready >/dev/null 2>&1 && break; sleep 0.1; done
taskset -a -p -c 1 "$BULWARK_PID" >/dev/null
for pid in $(cat "$PERFANCHOR_RUN/logs/backend.mainpid") $(pgrep -P "$(cat "$PERFANCHOR_RUN/logs/backend.mainpid")"); do
  taskset -a -p -c 1 "$pid" >/dev/null
done

load() {  # $1 = seconds
  case "$MODE" in
    h1)   wrk -t1 -c50 -d"$1s" --latency http://127.0.0.1:28085/ ;;
    h2h1) h2load -D "$1" -c 50 -m 10 http://127.0.0.1:28095/ ;;
    h2h2) h2load -D "$1" -c 50 -m 10 http://127.0.0.1:28096/ ;;
    rate) PA_MEAN_DELAY_MS=10 wrk -t1 -c50 -d"$1s" --latency -s "$PERF_COMPARE/poisson.lua" http://127.0.0.1:28085/ ;;
    *) echo "mode: h1 | h2h1 | h2h2 | rate" >&2; return 2 ;;
  esac
}
export -f load; export MODE PERF_COMPARE
# warm-up (pools, allocator), then record exactly the measured window with the load pinned to core 0
taskset -c 0 bash -c 'load 2' >/dev/null 2>&1
perf record -e cpu-clock -F 2999 -g -p "$BULWARK_PID" -o "$OUT/perf-$MODE.data" -- sleep "$DURATION" \
  >"$OUT/perf-record-$MODE.log" 2>&1 &
PERF_PID=$!
taskset -c 0 bash -c "load $DURATION" >"$OUT/load-$MODE.txt" 2>&1
wait "$PERF_PID" || true
perf report -i "$OUT/perf-$MODE.data" --no-children --sort symbol --stdio -g none --percent-limit 0.4 \
  2>/dev/null | sed -e "s/  *\$//" -e "/^\$/d" >"$OUT/perf-$MODE-flat.txt"
perf report -i "$OUT/perf-$MODE.data" --no-children --sort dso --stdio -g none 2>/dev/null | sed -e "s/  *\$//" -e "/^\$/d" \
  >"$OUT/perf-$MODE-dso.txt"
grep -E 'Requests/sec|requests:|finished in|Latency|50%|99%' "$OUT/load-$MODE.txt" || true
echo "profile: $OUT/perf-$MODE-flat.txt $OUT/perf-$MODE-dso.txt" >&2
