#!/usr/bin/env bash
# Performance: bulwark (one worker) against direct, HAProxy and nginx with the shared
# perf-compare harness (../shared/perf-compare, outside this repository).
#
#   bench/run-perf.sh                    # full run: REPS=3, pin split+none, wrk/h2load/rate(5k,15k) + memory
#   REPS=5 bench/run-perf.sh             # more repetitions
#   SMOKE=1 bench/run-perf.sh            # ~4 min sanity pass: 1 rep of 3 s, split only, 5k only, 500 idle conns
#   BENCH_ARGS="--pin split" bench/run-perf.sh   # replaces the default extra bench.py arguments
#
# Steps: build bulwark (Release) in $BUILD_DIR; `bulwark check` the config; start bulwark with
# bench/perf/bulwark-perf.yaml; run.sh ours:28085:28095:28096 (throughput + equal-load latency; bench.py
# pins every server incl. bulwark itself, found by its listening ports); then the idle-memory phase on a
# freshly started bulwark per protocol (RSS is a high-water mark); stop
# everything started here; write the tables into bench/RESULTS.md between the GENERATED markers (text
# outside the markers, e.g. the profile notes, is kept).
# Needs: BULWARK_WITH_BENCH=1 scripts/install-deps.sh (haproxy nginx wrk nghttp2-client hey apache2-utils).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PERF_COMPARE="${PERF_COMPARE:-$(cd "$ROOT/.." && pwd)/shared/perf-compare}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
CONFIG="$ROOT/bench/perf/bulwark-perf.yaml"
REPS="${REPS:-3}"
SMOKE="${SMOKE:-0}"
TS="$(date -u +%Y%m%d-%H%M%S)"
export PERFANCHOR_RUN="${PERFANCHOR_RUN:-/tmp/bulwark-perf/run-$TS}"
if [[ "$SMOKE" == "1" ]]; then
  REPS="${REPS_SMOKE:-1}"
  DEFAULT_ARGS="--duration 3 --pin split --rates 5000 --h2-requests 50000"
  MEM_CONNS="${MEM_CONNS:-500}"
  RESULTS="${RESULTS:-$PERFANCHOR_RUN/RESULTS-smoke.md}"
else
  DEFAULT_ARGS="--rates 5000,15000"
  MEM_CONNS="${MEM_CONNS:-5000}"
  RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"
fi
BENCH_ARGS="${BENCH_ARGS-$DEFAULT_ARGS}"
OURS="ours:28085:28095:28096"
ADMIN="127.0.0.1:28199"
BULWARK_PID=""

log() { echo "run-perf: $*" >&2; }

for tool in haproxy nginx wrk h2load python3 taskset ss curl; do
  command -v "$tool" >/dev/null || { log "missing $tool: run BULWARK_WITH_BENCH=1 scripts/install-deps.sh"; exit 2; }
done
command -v hey >/dev/null || log "hey not installed: the hey -q cross-check rows are skipped"
[[ -x "$PERF_COMPARE/run.sh" ]] || { log "perf-compare harness not found at $PERF_COMPARE (set PERF_COMPARE)"; exit 2; }
mkdir -p "$PERFANCHOR_RUN/logs"

# ---------------------------------------------------------------- build + config check
log "building bulwark (Release) in $BUILD_DIR"
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBULWARK_BUILD_EXAMPLES=OFF -DBULWARK_BUILD_TESTS=OFF >"$PERFANCHOR_RUN/logs/cmake.log"
fi
ninja -C "$BUILD_DIR" -j"${BUILD_JOBS:-2}" bulwark >"$PERFANCHOR_RUN/logs/build.log" || {
  tail -30 "$PERFANCHOR_RUN/logs/build.log" >&2; exit 1; }
BIN="$BUILD_DIR/proxy/bulwark"
[[ -x "$BIN" ]] || BIN="$(find "$BUILD_DIR" -maxdepth 3 -type f -name bulwark -perm -u+x | head -1)"
"$BIN" check -c "$CONFIG" >/dev/null

# ---------------------------------------------------------------- bulwark life cycle
stop_bulwark() {
  if [[ -n "$BULWARK_PID" ]] && kill -0 "$BULWARK_PID" 2>/dev/null; then
    kill -TERM "$BULWARK_PID"
    for _ in $(seq 1 100); do kill -0 "$BULWARK_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$BULWARK_PID" 2>/dev/null; then log "bulwark $BULWARK_PID ignored SIGTERM for 10 s; SIGKILL"; kill -KILL "$BULWARK_PID"; fi
    wait "$BULWARK_PID" 2>/dev/null || true
  fi
  BULWARK_PID=""
}
trap stop_bulwark EXIT
trap 'exit 130' INT TERM

start_bulwark() {  # $1 = log name
  for p in 28085 28095 28096 "${ADMIN##*:}"; do
    if ss -ltnH "sport = :$p" | grep -q .; then log "port $p already in use"; exit 1; fi
  done
  ulimit -n 20000 2>/dev/null || true  # the memory phase holds 5000 downstream connections
  "$BIN" run -c "$CONFIG" --log-level warn >"$PERFANCHOR_RUN/logs/bulwark-$1.out" 2>&1 &
  BULWARK_PID=$!
  for _ in $(seq 1 100); do
    if curl -fsS "http://$ADMIN/ready" >/dev/null 2>&1; then log "bulwark $BULWARK_PID ready ($1)"; return 0; fi
    kill -0 "$BULWARK_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "bulwark did not become ready:"; cat "$PERFANCHOR_RUN/logs/bulwark-$1.out" >&2; exit 1
}

check_alive() {  # bulwark must survive every phase: a crash is a finding, not noise
  if ! kill -0 "$BULWARK_PID" 2>/dev/null; then
    log "bulwark exited during $1:"; tail -50 "$PERFANCHOR_RUN/logs/bulwark-$1.out" >&2; exit 1
  fi
}

COMMANDS=()
run_harness() {  # $1 = label, rest = run.sh arguments
  local label=$1; shift
  COMMANDS+=("$PERF_COMPARE/run.sh $OURS $*")
  log "[$label] $PERF_COMPARE/run.sh $OURS $*"
  "$PERF_COMPARE/run.sh" "$OURS" "$@" 2>&1 | tee -a "$PERFANCHOR_RUN/progress.log" >&2
}

# ---------------------------------------------------------------- phases
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# shellcheck disable=SC2086  # BENCH_ARGS is a word list on purpose
start_bulwark load
run_harness load --reps "$REPS" --phases wrk,h2load,rate $BENCH_ARGS
check_alive load
curl -fsS "http://$ADMIN/metrics" >"$PERFANCHOR_RUN/logs/metrics-after-load.txt" 2>/dev/null || true
stop_bulwark
for proto in h1 h2; do
  start_bulwark "mem-$proto"
  run_harness "mem-$proto" --phases mem --mem-proto "$proto" --mem-conns "$MEM_CONNS"
  check_alive "mem-$proto"
  stop_bulwark
done
FINISHED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- tables -> RESULTS.md
mapfile -t FILES < <(ls "$PERFANCHOR_RUN"/results-*.jsonl)
# Keep a trimmed copy of the raw data (the per-CPU and raw-output fields dropped) next to the tables.
RAW_DIR="$ROOT/bench/perf/results"
[[ "$SMOKE" == "1" ]] && RAW_DIR="$PERFANCHOR_RUN"
mkdir -p "$RAW_DIR"
RAW="$RAW_DIR/$( [[ "$SMOKE" == "1" ]] && echo smoke || echo full)-$TS.jsonl"
python3 - "$RAW" "${FILES[@]}" <<'PY'
import json, sys
keep = {'phase', 'time', 'ncpu', 'targets', 'uname', 'tools', 'pin', 'target', 'variant', 'rep', 'rps',
        'p50_us', 'p75_us', 'p90_us', 'p99_us', 'p99.9_us', 'max_us', 'requests', 'succeeded', 'failed',
        'errored', 'non2xx', 'socket_errors', 'rc', 'wall_s', 'waited_quiet_s', 'client_cpu_s',
        'proxy_cpu_s', 'backend_cpu_s', 'foreign_cpu_s', 'kthread_cpu_s', 'proxy_us_per_req',
        'backend_us_per_req', 'client_us_per_req', 'cpu1_us_per_req', 'cpu1_steal_s', 'proto', 'conns',
        'rss_before_kb', 'rss_after_kb', 'kb_per_conn', 'raw_tail'}
with open(sys.argv[1], 'w') as out:
    for p in sys.argv[2:]:
        for line in open(p):
            if line.strip():
                r = json.loads(line)
                out.write(json.dumps({k: v for k, v in r.items() if k in keep}) + '\n')
PY
if [[ "$SMOKE" == "1" ]]; then RAW_KEEP="$RAW"; else RAW_KEEP="${RAW#$ROOT/}"; fi

GEN="$PERFANCHOR_RUN/generated.md"
{
  echo "<!-- BEGIN GENERATED by bench/run-perf.sh: do not edit by hand, rerun the script -->"
  echo "## Run"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| date (UTC) | $STARTED → $FINISHED |"
  echo "| machine | $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM |"
  echo "| kernel | $(uname -sr) |"
  echo "| load average (1/5/15 min) | before $LOAD_BEFORE, after $LOAD_AFTER |"
  echo "| bulwark | $(git -C "$ROOT" rev-parse --short=12 HEAD)$(git -C "$ROOT" diff --quiet HEAD -- proxy policies filters CMakeLists.txt 2>/dev/null || echo ' (+ uncommitted changes)'), \`$("$BIN" version | head -1)\`, Release, config \`bench/perf/bulwark-perf.yaml\` (1 worker, access log off) |"
  echo "| peers | $(haproxy -v | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), h2load $(h2load --version | awk '{print $NF}') |"
  echo "| command | \`$( [[ "$SMOKE" == "1" ]] && echo "SMOKE=1 ")REPS=$REPS$( [[ "$BENCH_ARGS" != "$DEFAULT_ARGS" ]] && echo " BENCH_ARGS=\"$BENCH_ARGS\"") bench/run-perf.sh\` |"
  echo "| raw data (trimmed) | \`$RAW_KEEP\` |"
  echo
  echo "Harness invocations (each with bulwark started fresh just before):"
  echo
  PARENT="$(cd "$ROOT/.." && pwd)"
  for c in "${COMMANDS[@]}"; do echo "    ${c//$PARENT\//../}"; done
  echo
  echo "## Targets (ratios in the same run, medians of the repetitions)"
  echo
  python3 "$ROOT/bench/perf/targets.py" "${FILES[@]}"
  echo
  echo "## Tables (\`analyze.py\`)"
  echo
  echo "Added latency is over \`direct\` at the same offered load; \`core-1 µs/req\` is the whole server core"
  echo "(backend + proxy, incl. softirq) per request with pin=split; 'foreign CPU' is CPU used by processes"
  echo "outside the test during the run (other sessions on the shared machine)."
  python3 "$PERF_COMPARE/analyze.py" "${FILES[@]}" | sed 's/^#### /### /'
  echo "<!-- END GENERATED -->"
} >"$GEN"

python3 - "$RESULTS" "$GEN" <<'PY'
import os, sys
path, gen = sys.argv[1], open(sys.argv[2]).read().rstrip('\n') + '\n'
begin, end = '<!-- BEGIN GENERATED', '<!-- END GENERATED -->'
old = open(path).read() if os.path.exists(path) else '# bulwark performance results\n\n' + begin + '\n' + end + '\n'
i, j = old.find(begin), old.find(end)
new = old[:i] + gen + old[j + len(end) + 1:] if i >= 0 and j >= 0 else old.rstrip('\n') + '\n\n' + gen
open(path, 'w').write(new)
PY
log "tables written to $RESULTS (raw: $RAW)"
