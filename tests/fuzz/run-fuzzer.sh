#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed time in one process (libFuzzer's default, -jobs=1).
# Usage: tests/fuzz/run-fuzzer.sh BINARY SECONDS WORK_DIR SEED_DIR [LIBFUZZER_FLAG...]
# New inputs go to WORK_DIR/corpus (created); SEED_DIR, the corpus kept in the repository, is only
# read. A crash, leak, sanitizer report, timeout (one input running over 30 s) or out-of-memory
# leaves the input in WORK_DIR/artifacts/ and exits non-zero. Inputs are capped at 64 KiB
# (-max_len), larger kept inputs are read truncated.
set -euo pipefail
binary=$1 seconds=$2 work=$3 seeds=$4
shift 4
mkdir -p "$work/corpus" "$work/artifacts"
exec "$binary" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds"
