#!/usr/bin/env bash
# Builds the fuzz targets (clang, libFuzzer, ASan + UBSan) in their own build directory and runs
# each one from its seed corpus for a short while, one at a time, so that a parser change that
# crashes, leaks or trips a sanitizer on nearby inputs fails CI. tests/fuzz/README.md has more.
# Usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]   (default 10, config 3x; BUILD_DIR=build-fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
BULWARK_WITH_FUZZ=1 "$(pwd)/scripts/install-deps.sh"
seconds="${1:-10}"
build_dir="${BUILD_DIR:-build-fuzz}"
jobs="${BULWARK_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULWARK_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build_dir" -j "$jobs"

failed=()
for binary in "$build_dir"/tests/fuzz/fuzz_*; do
  [[ -f "$binary" && -x "$binary" ]] || continue
  name=$(basename "$binary")
  name=${name#fuzz_}
  # A target's dictionary is tests/fuzz/<target>.dict, or one shared by its family
  # (http1_server and http1_client use http1.dict).
  dict=tests/fuzz/$name.dict
  [[ -f "$dict" ]] || dict=tests/fuzz/${name%%_*}.dict
  [[ -f "$dict" ]] || dict=""
  run_seconds=$seconds
  # The config target spends its first 10 s or so on its seeds (whole config files, one a
  # deliberately slow alias bomb) before it mutates anything: it gets three times as long.
  [[ "$name" == config ]] && run_seconds=$((seconds * 3))
  work="$build_dir/tests/fuzz/smoke/$name"
  rm -rf "$work" "$work.log"
  mkdir -p "$work"
  echo "fuzz-smoke: $name for ${run_seconds}s"
  if ! tests/fuzz/run-fuzzer.sh "$binary" "$run_seconds" "$work" "tests/fuzz/corpus/$name" \
      ${dict:+-dict="$dict"} >"$work.log" 2>&1; then
    failed+=("$name")
    tail -n 60 "$work.log" >&2
    echo "fuzz-smoke: $name FAILED; input kept in $work/artifacts/, log in $work.log" >&2
  else
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' "$work.log" | tr '\n' ' '
    echo
  fi
done
if ((${#failed[@]})); then
  echo "fuzz-smoke: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz-smoke: all targets ran without a finding"
