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
rc=0
run-clang-tidy -quiet -p "$BUILD_DIR" -j "${BULWARK_JOBS:-$(nproc)}" \
  "^${root}/(common|policies|proxy|filters)/.*\.cc$" >"$out" 2>&1 || rc=$?
# run-clang-tidy 14 always passes --use-color, so the escape codes must go before matching
# "/path:line:col: warning:" at the start of a line; otherwise nothing ever matches.
sed -i 's/\x1b\[[0-9;]*m//g' "$out"
# One line per warning, deduplicated (a header's warning repeats for every file including it).
warnings=$(grep -E '^/[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$out" | sort -u || true)
if [[ -n "$warnings" ]]; then
  echo "$warnings" >&2
  echo "tidy: $(echo "$warnings" | wc -l) warnings (see .clang-tidy)" >&2
  exit 1
fi
# A failure that left no parsable warning (clang-tidy crashed, unusable compile_commands.json)
# must not pass as a clean run.
if ((rc != 0)); then
  cat "$out" >&2
  echo "tidy: run-clang-tidy failed (exit $rc) without reporting a warning" >&2
  exit 1
fi
# run-clang-tidy prints each clang-tidy command line; none means no source matched, e.g. a
# compile_commands.json written for another checkout.
checked=$(grep -cE '^clang-tidy[^ ]* .*\.cc$' "$out" || true)
if ((checked == 0)); then
  echo "tidy: no source of $root in $BUILD_DIR/compile_commands.json was checked" >&2
  exit 1
fi
echo "tidy: no warnings in $checked files of common/ policies/ proxy/ filters/"
