#!/usr/bin/env bash
# Runs clang-tidy (Debian's clang-tidy 14, checks in .clang-tidy) over every source of common/,
# policies/, proxy/ and filters/, and fails on any warning.
#   scripts/tidy.sh [BUILD_DIR]   (default: build; needs its compile_commands.json)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build}"
if [[ ! -f "$BUILD_DIR/compile_commands.json" ]]; then
  echo "tidy: $BUILD_DIR/compile_commands.json missing (build first)" >&2
  exit 2
fi
root="$(pwd)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
run-clang-tidy -quiet -p "$BUILD_DIR" -j "${BULWARK_JOBS:-$(nproc)}" \
  "^${root}/(common|policies|proxy|filters)/.*\.cc$" >"$out" 2>&1 || true
# One line per warning, deduplicated (a header's warning repeats for every file including it).
warnings=$(grep -E '^/[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$out" | sort -u || true)
if [[ -n "$warnings" ]]; then
  echo "$warnings" >&2
  echo "tidy: $(echo "$warnings" | wc -l) warnings (see .clang-tidy)" >&2
  exit 1
fi
echo "tidy: no warnings in common/ policies/ proxy/ filters/"
