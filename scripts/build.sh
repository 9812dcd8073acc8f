#!/usr/bin/env bash
# Installs missing Debian packages, then configures and builds bulwark (Release with debug info).
# Usage: scripts/build.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
"$(pwd)/scripts/install-deps.sh"
BUILD_DIR="${1:-build}"
JOBS="${BULWARK_JOBS:-$(nproc)}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULWARK_WERROR=ON \
  ${BULWARK_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
