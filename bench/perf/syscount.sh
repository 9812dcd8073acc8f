#!/usr/bin/env bash
# System calls per proxied request of bulwark (one worker, bench/perf/bulwark-perf.yaml) for
# HTTP/1.1 -> HTTP/1.1, h2c -> HTTP/1.1 and h2c -> h2c, counted with `strace -c -f` while h2load
# sends N requests (default 20000) over 10 connections; the backend is the perf-compare harness's
# nginx (../shared/perf-compare/backend-nginx.conf). Deterministic where throughput is not: the
# README's syscall table comes from this script.
#   bench/perf/syscount.sh [BULWARK_BIN]        # default build-bench/proxy/bulwark
# Needs: strace, nginx, h2load (nghttp2-client), curl.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PERF_COMPARE="${PERF_COMPARE:-$(cd "$ROOT/.." && pwd)/shared/perf-compare}"
BIN="${1:-$ROOT/build-bench/proxy/bulwark}"
N="${N:-20000}"
RUN="$(mktemp -d /tmp/bulwark-syscount.XXXXXX)"
mkdir -p "$RUN/logs" "$RUN/tmp"
for tool in strace nginx h2load curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done
sed "s#/tmp/perfanchor#$RUN#g" "$PERF_COMPARE/backend-nginx.conf" > "$RUN/backend-nginx.conf"
nginx -p "$RUN/" -c "$RUN/backend-nginx.conf" > "$RUN/logs/backend.out" 2>&1 & NGINX=$!
"$BIN" run --config "$ROOT/bench/perf/bulwark-perf.yaml" > "$RUN/logs/bulwark.out" 2>&1 & BULWARK=$!
trap 'kill $BULWARK $NGINX 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:28085/ && break; sleep 0.1; done

count() {  # name, load command...
  local name=$1; shift
  "$@" > /dev/null 2>&1  # warm the pools
  strace -c -f -p "$BULWARK" -o "$RUN/strace.$name" 2>/dev/null & local tracer=$!
  sleep 0.5
  "$@" > "$RUN/load.$name" 2>&1
  kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
  local total
  total=$(awk '/total/ {print $4}' "$RUN/strace.$name" | tail -1)
  echo "$name: $total syscalls for $N requests = $(python3 -c "print(round($total / $N, 2))") per request;" \
       "$(grep -E 'succeeded' "$RUN/load.$name" | head -1)"
  grep -E '^ +[0-9]' "$RUN/strace.$name" | sort -k4 -n -r | head -5 | awk '{printf "    %-14s %s\n", $NF, $4}'
}
count h1_to_h1 h2load --h1 -n "$N" -c 10 http://127.0.0.1:28085/
count h2c_to_h1 h2load -n "$N" -c 10 -m 10 http://127.0.0.1:28095/
count h2c_to_h2c h2load -n "$N" -c 10 -m 10 http://127.0.0.1:28096/
