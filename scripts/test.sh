#!/usr/bin/env bash
# Installs missing packages, builds, and runs the default test suite (labels unit and integration).
# Long fault, soak and benchmark runs are labelled (fault, soak, bench) and run on purpose:
#   ctest --test-dir build -L fault
set -euo pipefail
cd "$(dirname "$0")/.."
"$(pwd)/scripts/build.sh" build
ctest --test-dir build -L 'unit|integration' --output-on-failure --timeout 300 -j "${BULWARK_TEST_JOBS:-2}"
