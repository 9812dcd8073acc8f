#!/usr/bin/env bash
# Installs missing packages, builds, and runs what CI checks, in this order:
#   1. formatting (scripts/format.sh --check, .clang-format)
#   2. the build with -Werror and the default test suite (labels unit and integration; the
#      include-direction test is one of them)
#   3. clang-tidy at zero warnings on common/ policies/ proxy/ filters/ (scripts/tidy.sh)
#   4. a short fuzz smoke, each target 10 s under ASan + UBSan (scripts/fuzz-smoke.sh)
#   5. the default suite again, built with ASan + UBSan in build-asan-ubsan (-Werror too): the
#      first report of either, in a test or in a child it spawned (bulwark, the example
#      backends), fails the run (tests/README.md, "Sanitizers")
# Long fault, soak and benchmark runs are labelled (fault, soak, bench) and run on purpose:
#   ctest --test-dir build -L fault
# ThreadSanitizer is such a run too (tests/README.md). BULWARK_QUICK=1 runs steps 1-2 only (a
# local edit-test loop).
set -euo pipefail
cd "$(dirname "$0")/.."
"$(pwd)/scripts/install-deps.sh"
"$(pwd)/scripts/format.sh" --check
"$(pwd)/scripts/build.sh" build
ctest --test-dir build -L 'unit|integration' --output-on-failure --timeout 300 -j "${BULWARK_TEST_JOBS:-2}"
if [[ "${BULWARK_QUICK:-0}" == "1" ]]; then exit 0; fi
"$(pwd)/scripts/tidy.sh" build
"$(pwd)/scripts/fuzz-smoke.sh" 10

# Step 5. Every process the tests start inherits these options (cmake/BulwarkAddTest.cmake
# prepends a small ASan quarantine; options already in the environment come last and win). A
# report stops the process at once: a test binary then fails, and a child's report (bulwark, the
# example backends and servers) fails the test that started it, even when the test SIGKILLs
# the child at its end (tests/support/process.cc, examples/common/testing/process.cc).
# LeakSanitizer stays on: it checks every test binary and every child that exits by itself
# (SIGTERM drains, CLI runs), and reports nothing today, the gRPC example backends included.
BULWARK_CMAKE_ARGS="${BULWARK_CMAKE_ARGS:-} -DBULWARK_SANITIZE=address,undefined" \
  "$(pwd)/scripts/build.sh" build-asan-ubsan
ASAN_OPTIONS="halt_on_error=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
  ctest --test-dir build-asan-ubsan -L 'unit|integration' --output-on-failure --timeout 300 \
  -j "${BULWARK_TEST_JOBS:-2}"
