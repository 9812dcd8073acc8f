#!/usr/bin/env bash
# Interleaved A/B of two bulwark builds (one worker each, bench/perf/bulwark-perf.yaml), each run
# beside HAProxy so the ratio to HAProxy is compared, not raw numbers of a noisy machine:
#   bench/perf/ab-compare.sh OLD_BINARY NEW_BINARY [REPS]
# Prints and keeps each run's summary under $OUT (default /tmp/bulwark-ab).
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PERF_COMPARE="${PERF_COMPARE:-$(cd "$ROOT/.." && pwd)/shared/perf-compare}"
OLD=$1 NEW=$2 REPS=${3:-3}
CONFIG="$ROOT/bench/perf/bulwark-perf.yaml"
OUT="${OUT:-/tmp/bulwark-ab}"; mkdir -p "$OUT"
for rep in $(seq 1 "$REPS"); do
  for who in old new; do
    if [ $who = old ]; then BIN=$OLD; else BIN=$NEW; fi
    $BIN run -c $CONFIG --log-level warn > $OUT/$who-$rep.log 2>&1 &
    PID=$!
    for i in $(seq 1 100); do curl -fsS http://127.0.0.1:28199/ready >/dev/null 2>&1 && break; sleep 0.1; done
    PERFANCHOR_RUN=$OUT/run-$who-$rep "$PERF_COMPARE/run.sh" ours:28085:28095:28096 --only ours,haproxy --reps 1 --pin split --phases wrk,h2load --duration 8 > $OUT/$who-$rep.out 2>&1
    kill -TERM $PID; wait $PID
  done
done
grep -h "c50" "$OUT"/*-*.out
