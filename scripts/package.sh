#!/usr/bin/env bash
# Builds bulwark and its Debian packages from this tree (CPack, cmake/BulwarkPackaging.cmake):
#   BUILD_DIR/packages/bulwark_<version>_<arch>.deb            the proxy
#   BUILD_DIR/packages/bulwark-examples_<version>_<arch>.deb   the example backends
# Usage: scripts/package.sh [BUILD_DIR]   (default: build). Prints the paths of the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export BULWARK_WITH_PACKAGING=1
BUILD_DIR="${1:-build}"
./scripts/build.sh "$BUILD_DIR" >&2
rm -f "$BUILD_DIR"/packages/*.deb
(cd "$BUILD_DIR" && cpack -G DEB --config CPackConfig.cmake >&2)
ls -1 "$(cd "$BUILD_DIR" && pwd)"/packages/*.deb
