#!/usr/bin/env bash
# Installs missing packages, builds, and runs what CI checks, in this order:
#   1. formatting (scripts/format.sh --check, .clang-format)
#   2. the build with -Werror and the default test suite (labels unit and integration; the
#      include-direction test is one of them)
#   3. clang-tidy at zero warnings on common/ policies/ proxy/ filters/ (scripts/tidy.sh)
#   4. a short fuzz smoke, each target 10 s under ASan + UBSan (scripts/fuzz-smoke.sh)
# Long fault, soak and benchmark runs are labelled (fault, soak, bench) and run on purpose:
#   ctest --test-dir build -L fault
# BULWARK_QUICK=1 runs steps 1-2 only (a local edit-test loop).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(pwd)/scripts/install-deps.sh"
"$(pwd)/scripts/format.sh" --check
"$(pwd)/scripts/build.sh" build
ctest --test-dir build -L 'unit|integration' --output-on-failure --timeout 300 -j "${BULWARK_TEST_JOBS:-2}"
if [[ "${BULWARK_QUICK:-0}" == "1" ]]; then exit 0; fi
"$(pwd)/scripts/tidy.sh" build
"$(pwd)/scripts/fuzz-smoke.sh" 10
