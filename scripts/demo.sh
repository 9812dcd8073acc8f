#!/usr/bin/env bash
# The main job: what bulwark saves, measured. Installs what is missing (Debian packages), builds,
# then runs the chaos scenario (bench/scenarios/chaos.yaml): 3 replicas of each example backend
# (gRPC ranking with Redis as its feature store, the task API, recommendations), steady load on
# all three, and timed phases - a replica killed, one returning errors, one slow, the feature
# store down, 10x overload, a reload and a zero-downtime handover - first through bulwark with
# examples/edge.yaml, then the same traffic straight to the replicas (round-robin, no protection).
# Prints per phase the client success rate and p50/p99 of both, then where the report (JSON,
# Markdown, PNG plots) is. About 3 minutes after the build. Every process it starts is stopped
# on exit, also on Ctrl-C.
#
#   scripts/demo.sh                      # the whole demo
#   scripts/demo.sh --time-scale 0.5     # shorter phases; other flags: bench/scenarios/chaos.py --help
#   BUILD_DIR=build-foo scripts/demo.sh  # another build directory
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

# build.sh first runs scripts/install-deps.sh (Debian packages, only the missing ones).
./scripts/build.sh "$BUILD_DIR"
exec /usr/bin/python3 bench/scenarios/chaos.py --build-dir "$BUILD_DIR" "$@"
