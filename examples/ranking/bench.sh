#!/bin/sh
# One ranking replica, direct: its own rps and latency at three loads, one JSON line each.
# Usage: examples/ranking/bench.sh BUILD_DIR [DURATION_S]
set -eu
build=${1:?usage: bench.sh BUILD_DIR [DURATION_S]}
duration=${2:-5}
server=$build/examples/ranking/ranking-server
client=$build/examples/ranking/ranking-client
out=$(mktemp)
"$server" --port 0 --control-port -1 --replica-id bench-0 >"$out" 2>/dev/null &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "ranking-server did not start" >&2; exit 1; }
for concurrency in 1 4 32; do
  printf '{"backend":"ranking","concurrency":%s,"result":' "$concurrency"
  "$client" --target "127.0.0.1:$port" --tenant mixed --concurrency "$concurrency" \
    --duration-s "$duration" --deadline-ms 1000 --json | tr -d '\n'
  echo '}'
done
