#!/usr/bin/env bash
# Formats every tracked C++ file with the repository's .clang-format (clang-format 14, Debian).
#   scripts/format.sh           rewrite files in place
#   scripts/format.sh --check   list files that differ and exit 1 (what .ci/run does)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -- '*.cc' '*.h')
if [[ "${1:-}" == "--check" ]]; then
  bad=()
  for f in "${files[@]}"; do
    if ! clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
  done
  if ((${#bad[@]})); then
    printf 'format: %s differs from .clang-format (run scripts/format.sh)\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files follow .clang-format"
else
  clang-format -i --style=file "${files[@]}"
fi
