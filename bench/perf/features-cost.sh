#!/usr/bin/env bash
# What bulwark's protective features cost when they do not fire: CPU per request of one worker
# on a bare HTTP/1.1 route (bench/perf/bulwark-perf.yaml, no access log) against the same route
# with retries + budget, per-host breaker, outlier detection, bulkhead, local rate limit,
# adaptive shedding, idempotency pass-through and the JSON access log to a file
# (bench/perf/bulwark-features.yaml). Interleaved repetitions, two loads each:
#   closed  wrk -t1 -c50 (saturated: CPU per request and throughput)
#   rate    wrk -t1 -c50 with perf-compare's poisson.lua at ~5,000 req/s (CPU per request at a
#           fixed load, the issue's "same load")
# CPU per request = bulwark's run time over the measured window (the scheduler's nanosecond
# account of every thread, /proc/PID/task/*/schedstat; utime+stime are sampled at the tick, too
# coarse at ~15 % of a core) / requests completed. Each repetition runs bare then features back
# to back; the summary gives the median of those pairs' ratios, which drifts in the machine's
# speed between repetitions do not move, next to the ratio of the medians.
# Pinned like bench/perf/profile.sh: load on core 0, bulwark and the backend nginx on core 1.
#
#   bench/perf/features-cost.sh [REPS]        # default 5; BIN=..., DURATION=10, OUT=...
# Writes $OUT/summary.md (medians, ratios) and $OUT/runs.tsv (every run).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PERF_COMPARE="${PERF_COMPARE:-$(cd "$ROOT/.." && pwd)/shared/perf-compare}"
BIN="${BIN:-$ROOT/build-bench/proxy/bulwark}"
REPS="${1:-5}"
DURATION="${DURATION:-10}"
export PERFANCHOR_RUN="${PERFANCHOR_RUN:-/tmp/bulwark-features-cost}"
OUT="${OUT:-$PERFANCHOR_RUN}"
ACCESS_LOG=/tmp/bulwark-features-access.log  # the path bench/perf/bulwark-features.yaml names
mkdir -p "$OUT/logs"
for tool in wrk taskset curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (BULWARK_WITH_BENCH=1 scripts/install-deps.sh)" >&2; exit 2; }
done
[[ -x "$BIN" ]] || { echo "no bulwark binary at $BIN (bench/run-perf.sh builds build-bench)" >&2; exit 2; }

BULWARK_PID=""
cleanup() {
  if [[ -n "$BULWARK_PID" ]] && kill -0 "$BULWARK_PID" 2>/dev/null; then kill -TERM "$BULWARK_PID"; wait "$BULWARK_PID" 2>/dev/null || true; fi
  "$PERF_COMPARE/stop.sh" >/dev/null 2>&1 || true
  rm -f "$ACCESS_LOG"
}
trap cleanup EXIT
"$PERF_COMPARE/start.sh" >/dev/null
for pid in $(cat "$PERFANCHOR_RUN/logs/backend.mainpid") $(pgrep -P "$(cat "$PERFANCHOR_RUN/logs/backend.mainpid")"); do
  taskset -a -p -c 1 "$pid" >/dev/null
done

cpu_nanos() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%.0f\n", ns}'; }

# run VARIANT CONFIG LOAD -> appends "variant load rep requests rps us_per_req" to runs.tsv
measure() {
  local variant=$1 config=$2 load=$3 rep=$4
  rm -f "$ACCESS_LOG"
  taskset -c 1 "$BIN" run -c "$config" --log-level warn >"$OUT/logs/bulwark-$variant-$load-$rep.log" 2>&1 &
  BULWARK_PID=$!
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:28199/ready >/dev/null 2>&1 && break; sleep 0.1; done
  local script=()
  if [[ "$load" == rate ]]; then script=(-s "$PERF_COMPARE/poisson.lua"); fi
  PA_MEAN_DELAY_MS=10 taskset -c 0 wrk -t1 -c50 -d2s "${script[@]}" http://127.0.0.1:28085/ >/dev/null 2>&1  # warm-up
  local c0 c1 out n
  c0=$(cpu_nanos "$BULWARK_PID")
  out=$(PA_MEAN_DELAY_MS=10 taskset -c 0 wrk -t1 -c50 -d"${DURATION}s" "${script[@]}" http://127.0.0.1:28085/)
  c1=$(cpu_nanos "$BULWARK_PID")
  kill -TERM "$BULWARK_PID"; wait "$BULWARK_PID" 2>/dev/null || true; BULWARK_PID=""
  n=$(awk '/requests in/{print $1}' <<<"$out")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "$variant/$load rep $rep had errors:" >&2; echo "$out" >&2; exit 1; fi
  python3 -c "import sys; n=int(sys.argv[1]); ns=int(sys.argv[3])-int(sys.argv[2]);
print(f'{sys.argv[4]}\t{sys.argv[5]}\t{sys.argv[6]}\t{n}\t{n/float(sys.argv[7]):.0f}\t{ns/1e3/n:.2f}')" \
    "$n" "$c0" "$c1" "$variant" "$load" "$rep" "$DURATION" | tee -a "$OUT/runs.tsv"
}

: >"$OUT/runs.tsv"
for rep in $(seq 1 "$REPS"); do
  for load in closed rate; do
    measure bare "$ROOT/bench/perf/bulwark-perf.yaml" "$load" "$rep"
    measure features "$ROOT/bench/perf/bulwark-features.yaml" "$load" "$rep"
  done
done

python3 - "$OUT/runs.tsv" "$REPS" "$DURATION" "$(git -C "$ROOT" rev-parse --short HEAD)" >"$OUT/summary.md" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]) if l.strip()]
def med(variant, load, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == variant and r[1] == load)
print(f'features-cost: {sys.argv[2]} interleaved reps of {sys.argv[3]} s, bulwark {sys.argv[4]}\n')
def paired(load):
    by = {(r[0], r[2]): float(r[5]) for r in rows if r[1] == load}
    reps = sorted({rep for (_, rep) in by})
    ratios = sorted(by[('features', rep)] / by[('bare', rep)] for rep in reps)
    return statistics.median(ratios), ratios[0], ratios[-1]
print('| load | bare µs/req | features µs/req | ratio of medians | median of paired ratios (min–max) | bare req/s | features req/s | throughput |')
print('|---|---|---|---|---|---|---|---|')
for load in ('closed', 'rate'):
    b, f = med('bare', load, 5), med('features', load, 5)
    br, fr = med('bare', load, 4), med('features', load, 4)
    pm, lo, hi = paired(load)
    print(f'| {load} | {b:.2f} | {f:.2f} | {100 * (f / b - 1):+.1f} % | {100 * (pm - 1):+.1f} % '
          f'({100 * (lo - 1):+.1f} to {100 * (hi - 1):+.1f} %) | {br:,.0f} | {fr:,.0f} | {fr / br:.2f}× |')
PY
cat "$OUT/summary.md"
