#!/usr/bin/env bash
# bulwark and HAProxy side by side on the chaos scenario (bench/scenarios/chaos.yaml): the same
# backends, phases and traffic, three sequential passes - through bulwark (examples/edge.yaml),
# through HAProxy (configured by bench/compare/haproxy.py: retries + redispatch, health checks,
# maxconn/queue limits, timeouts, h2 to the gRPC replicas) and straight to the replicas.
# Prints the per-phase table of all three and writes the report (JSON, Markdown, PNG plots) into
# bench/results/compare-<time>/. Exits 1 when bulwark misses a threshold of the phase file
# (HAProxy's misses are listed, not fatal). About 4 minutes after the build.
#
#   bench/compare/run.sh                    # build, then the three passes
#   BUILD=0 bench/compare/run.sh            # reuse the binaries in $BUILD_DIR (default build)
#   bench/compare/run.sh --time-scale 0.5   # other flags: bench/scenarios/chaos.py --help
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
if ! command -v haproxy >/dev/null; then BULWARK_WITH_BENCH=1 ./scripts/install-deps.sh; fi
if [[ "${BUILD:-1}" == "1" ]]; then ./scripts/build.sh "$BUILD_DIR"; fi
exec /usr/bin/python3 bench/scenarios/chaos.py --build-dir "$BUILD_DIR" --passes bulwark,haproxy,direct \
  --run-dir "bench/results/compare-$(date +%Y%m%d-%H%M%S)" "$@"
