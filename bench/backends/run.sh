#!/usr/bin/env bash
# Benchmark entry: each example backend alone, one replica, direct (no bulwark): its own
# rps and p50/p90/p99, so the demo and the proxy benchmarks can say how much bulwark adds.
#
#   bench/backends/run.sh                 # ~2 min of load + the build; writes bench/backends/RESULTS.md
#   DURATION=5 bench/backends/run.sh      # seconds per load (default 10)
#   BUILD_DIR=build BUILD=0 bench/backends/run.sh   # use the binaries already built there
#
# Loads (closed loop; every load is bounded by DURATION, every wait by a timeout):
#   ranking          ranking-client (grpc++), Rank, tenant mixed, 1 and 32 in flight
#   task             wrk + post_json.lua, POST /v1/tasks (a new task each), 1 and 64 connections with
#                    the seed's latency model, and 64 with --latency-scale 0 (the service's own work)
#   recommendation   wrk + post_json.lua, POST /v1/recommend k=20, 1 and 32 connections; and the
#                    seed's loadtest.sh (Python) at 25 in flight as a cross-check
# Client and backend share the machine's cores (no pinning): these are a backend's numbers on
# this machine under its own load generator, not a capacity claim.
# Needs: cmake ninja-build wrk python3 (scripts/install-deps.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/backends"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench-backends}"
DURATION="${DURATION:-10}"
RESULTS="${RESULTS:-$HERE/RESULTS.md}"
TS="$(date -u +%Y%m%d-%H%M%S)"
RUN_DIR="${RUN_DIR:-/tmp/bulwark-bench-backends/run-$TS}"
JSONL="$RUN_DIR/results.jsonl"
SERVER_PID=""

log() { echo "bench/backends: $*" >&2; }

for tool in cmake ninja wrk python3; do
  command -v "$tool" >/dev/null || { log "missing $tool: run scripts/install-deps.sh"; exit 2; }
done
[[ "$DURATION" =~ ^[0-9]+$ && "$DURATION" -ge 1 && "$DURATION" -le 600 ]] || { log "DURATION must be 1..600"; exit 2; }
mkdir -p "$RUN_DIR/logs"
: >"$JSONL"
: >"$RUN_DIR/servers.txt"

# ---------------------------------------------------------------- build
if [[ "${BUILD:-1}" == "1" ]]; then
  log "building the backends in $BUILD_DIR"
  if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBULWARK_BUILD_TESTS=OFF \
      >"$RUN_DIR/logs/cmake.log"
  fi
  ninja -C "$BUILD_DIR" -j"${BUILD_JOBS:-2}" ranking-server ranking-client task-server recommendation-server \
    >"$RUN_DIR/logs/build.log" || { tail -30 "$RUN_DIR/logs/build.log" >&2; exit 1; }
fi
BIN="$BUILD_DIR/examples"
BUILD_TYPE="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")"
BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo (the project default)}"

# ---------------------------------------------------------------- one backend at a time
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then log "$SERVER_PID ignored SIGTERM for 10 s; SIGKILL"; kill -KILL "$SERVER_PID"; fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

PORT=""
start_server() {  # $1 = name, $2... = command; sets PORT from "listening on 127.0.0.1:PORT"
  local name="$1"; shift
  local out="$RUN_DIR/logs/$name.log"
  "$@" >"$out" 2>&1 &
  SERVER_PID=$!
  echo "${*#$BUILD_DIR/}" >>"$RUN_DIR/servers.txt"
  PORT=""
  for _ in $(seq 1 200); do
    PORT="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out" | head -1)"
    [[ -n "$PORT" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  [[ -n "$PORT" ]] || { log "$name did not start:"; cat "$out" >&2; exit 1; }
  log "$name on 127.0.0.1:$PORT"
}

# record BACKEND LOAD COMMAND RAW_JSON: one normalised line in $JSONL.
record() {
  python3 - "$1" "$2" "$3" "$4" >>"$JSONL" <<'EOF'
import json, sys
backend, load, command, raw = sys.argv[1:5]
r = json.loads(raw)
if "latency_ms" in r:  # ranking-client --json
    row = dict(requests=r["calls"], rps=r["rps"], p50_ms=r["latency_ms"]["p50"], p90_ms=r["latency_ms"]["p90"],
               p99_ms=r["latency_ms"]["p99"], errors=r["errors"])
elif "error_rate" in r:  # loadtest.sh OUTPUT=json
    row = dict(requests=r["requests"], rps=r["rps"], p50_ms=r["p50_ms"], p90_ms=None, p95_ms=r["p95_ms"],
               p99_ms=r["p99_ms"], errors=round(r["error_rate"] * r["requests"]))
else:  # post_json.lua
    row = dict(requests=r["requests"], rps=r["rps"], p50_ms=r["p50_ms"], p90_ms=r["p90_ms"], p99_ms=r["p99_ms"],
               errors=r["non2xx"] + r["socket_errors"])
print(json.dumps(dict(backend=backend, load=load, command=command, **row, raw=r)))
EOF
}

# wrk_load BACKEND LOAD CONNECTIONS SCRIPT_ARGS...
wrk_load() {
  local backend="$1" load="$2" conns="$3"; shift 3
  local threads=$(( conns < 2 ? 1 : 2 ))
  local cmd=(wrk -t"$threads" -c"$conns" -d"${DURATION}s" --timeout 5s -s "$HERE/post_json.lua"
             "http://127.0.0.1:$PORT" -- "$@")
  log "$backend: $load"
  local out
  out="$(timeout $((DURATION + 30)) "${cmd[@]}" | grep '^{' | tail -1)" || true
  [[ -n "$out" ]] || { log "wrk printed no result"; exit 1; }
  record "$backend" "$load" "${cmd[*]/#$HERE\//bench/backends/}" "$out"
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# ranking: the seed's defaults (model cost 4.5 ms median, 2 inference slots).
start_server ranking "$BIN/ranking/ranking-server" --port 0 --control-port -1 --replica-id bench-ranking
for conc in 1 32; do
  cmd=("$BIN/ranking/ranking-client" --target "127.0.0.1:$PORT" --method rank --tenant mixed
       --concurrency "$conc" --duration-s "$DURATION" --deadline-ms 1000 --json)
  log "ranking: $conc in flight"
  out="$(timeout $((DURATION + 30)) "${cmd[@]}" | grep '^{' | tail -1)" || true
  [[ -n "$out" ]] || { log "ranking-client printed no result"; exit 1; }
  record ranking "Rank, $conc in flight" "ranking-client --target 127.0.0.1:$PORT --method rank --tenant mixed --concurrency $conc --duration-s $DURATION --deadline-ms 1000" "$out"
done
stop_server

# task: the seed's latency model (p50 45 ms), then the service's own work without it.
start_server task "$BIN/task/task-server" --port 0 --control-port -1 --replica-id bench-task --seed 1
wrk_load task "POST /v1/tasks, 1 connection" 1 task
wrk_load task "POST /v1/tasks, 64 connections" 64 task
stop_server
start_server task "$BIN/task/task-server" --port 0 --control-port -1 --replica-id bench-task --seed 1 --latency-scale 0
wrk_load task "POST /v1/tasks, 64 connections, --latency-scale 0" 64 task
stop_server

# recommendation: default model (5000 items x 32 dims per tenant, 2 scoring workers).
start_server recommendation "$BIN/recommendation/recommendation-server" --port 0 --control-port -1 \
  --replica-id bench-rec --seed 1
wrk_load recommendation "POST /v1/recommend k=20, 1 connection" 1 recommend demo 20
wrk_load recommendation "POST /v1/recommend k=20, 32 connections" 32 recommend demo 20
log "recommendation: loadtest.sh"
lt_env=(BASE_URL="http://127.0.0.1:$PORT" ENDPOINT=/v1/recommend TENANT_ID=demo SURFACE=home K=20
        REQUESTS=$((DURATION * 5000)) CONCURRENCY=25 MAX_SECONDS="$DURATION" OUTPUT=json)
out="$(env "${lt_env[@]}" timeout $((DURATION + 30)) "$ROOT/examples/recommendation/loadtest.sh" | grep '^{' | tail -1)" || true
[[ -n "$out" ]] || { log "loadtest.sh printed no result"; exit 1; }
record recommendation "loadtest.sh, 25 in flight" \
  "REQUESTS=$((DURATION * 5000)) CONCURRENCY=25 MAX_SECONDS=$DURATION K=20 examples/recommendation/loadtest.sh" "$out"
stop_server

# ---------------------------------------------------------------- RESULTS.md
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
COMMAND="DURATION=$DURATION"
[[ "$BUILD_DIR" == "$ROOT/build-bench-backends" ]] || COMMAND+=" BUILD_DIR=${BUILD_DIR#$ROOT/}"
[[ "${BUILD:-1}" == "1" ]] || COMMAND+=" BUILD=0"
COMMAND+=" bench/backends/run.sh"
python3 - "$JSONL" "$RESULTS" "$ROOT" "$COMMAND" "$LOAD_BEFORE" "$LOAD_AFTER" "$BUILD_TYPE" "$DURATION" \
  "$RUN_DIR/servers.txt" <<'EOF'
import json, os, platform, subprocess, sys, datetime
jsonl, results, root, command, load_before, load_after, build_type, duration, servers = sys.argv[1:10]
rows = [json.loads(line) for line in open(jsonl)]

def sh(*cmd):
    try:
        return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
mem_gib = next((int(l.split()[1]) / 1048576 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
commit = sh("git", "rev-parse", "--short", "HEAD")
dirty = " (with uncommitted changes)" if sh("git", "status", "--porcelain", "--", "examples") else ""
fmt = lambda v: "—" if v is None else f"{v:.2f}"

out = []
out.append("# Example backends alone: one replica, direct\n")
out.append("Benchmark entry: each example backend's own throughput and latency with no bulwark in "
           "front, so the demo and the proxy benchmarks can say how much bulwark adds (run the same load "
           "through bulwark and compare). Generated by `bench/backends/run.sh`; do not edit by hand.\n")
out.append("## Run\n")
out.append(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
out.append(f"- Machine: {cpu}, {os.cpu_count()} CPUs, {mem_gib:.0f} GiB, {platform.system()} {platform.release()}")
out.append(f"- Load average (1/5/15 min) before / after: {load_before} / {load_after} — the machine is shared; "
           "other processes' CPU lowers these numbers")
out.append(f"- Source: commit {commit}{dirty}, CMAKE_BUILD_TYPE {build_type}")
out.append(f"- Command: `{command}` ({duration} s per load, closed loop; "
           "client and backend on the same cores)\n")
out.append("## Results\n")
out.append("| Backend | Load | rps | p50 ms | p90 ms | p99 ms | errors / requests |")
out.append("|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    out.append(f"| {r['backend']} | {r['load']} | {r['rps']:.0f} | {fmt(r['p50_ms'])} | {fmt(r.get('p90_ms'))} | "
               f"{fmt(r['p99_ms'])} | {r['errors']} / {r['requests']} |")
out.append("")
out.append("## How to read it\n")
out.append("- ranking: the latency is the documented model (`--model-cost-us 4500`, log-normal jitter 0.2, 2 "
           "inference slots), so 1 in flight shows the idle feed (target p50 ≈ 5 ms, p99 ≤ 10 ms) and 32 in "
           "flight the replica's ceiling (≈ slots / cost ≈ 440 rps; beyond it latency grows by Little's law).")
out.append("- task: creates run the seed's execution-time model (p50 45 ms, p99 120 ms) as a timer, so rps "
           "at 64 connections is ≈ 64 / 46 ms until the CPU runs out; `--latency-scale 0` shows the cost of "
           "the service's real work (JSON validation, the store, the HTTP stack).")
out.append("- recommendation: every request scores the tenant's whole catalog (5000 × 32) on 2 worker "
           "threads; the wrk rows and the seed's Python `loadtest.sh` (which also measures itself) differ "
           "by the client's cost.")
out.append("- wrk's percentiles come from its own histogram of completed requests (closed loop: a slow "
           "answer delays the next request, so tail latency under saturation is understated).\n")
out.append("## Commands\n")
out.append("Backends (one at a time, each on a free port):\n")
out.append("```")
out.extend(line.strip() for line in open(servers) if line.strip())
out.append("```\n")
out.append("Loads:\n")
out.append("```")
for r in rows:
    out.append(r["command"])
out.append("```\n")
out.append("<details><summary>Raw results (one JSON line per load)</summary>\n")
out.append("```json")
for r in rows:
    out.append(json.dumps(r["raw"]))
out.append("```\n</details>")
open(results, "w").write("\n".join(out) + "\n")
EOF
log "wrote $RESULTS"
