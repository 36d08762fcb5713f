#!/usr/bin/env bash
# Checks that native/*.cc and native/*.h are formatted as .clang-format says (clang-format 21.1.8, from
# PyPI into .venv by scripts/setup.sh); with --fix, formats them in place instead.
#   scripts/lint-cpp.sh          # exit 1 and list the differences when a file is not formatted
#   scripts/lint-cpp.sh --fix    # rewrite the files
set -euo pipefail
cd "$(dirname "$0")/.."

fix=0
case "${1:-}" in
  --fix) fix=1 ;;
  "") ;;
  *) echo "usage: scripts/lint-cpp.sh [--fix]" >&2; exit 2 ;;
esac

if [ -x .venv/bin/clang-format ]; then
  cf=.venv/bin/clang-format
elif command -v clang-format >/dev/null; then
  cf=$(command -v clang-format)
else
  echo "lint-cpp: clang-format not found: run scripts/setup.sh (it installs clang-format==21.1.8 into .venv)," >&2
  echo "  or .venv/bin/pip install clang-format==21.1.8, or put clang-format on PATH" >&2
  exit 1
fi
# Other versions format some constructs differently: say so rather than fail on a diff they cause.
want=21.1.8
have=$("$cf" --version | sed -n 's/.*clang-format version \([0-9.]*\).*/\1/p')
[ "$have" = "$want" ] || echo "lint-cpp: warning: $cf is clang-format $have, .clang-format is checked with $want" >&2

files=(native/*.cc native/*.h)
if [ "$fix" = 1 ]; then
  "$cf" -i --style=file "${files[@]}"
  echo "lint-cpp: formatted ${#files[@]} files"
else
  "$cf" --dry-run --Werror --style=file "${files[@]}"
  echo "lint-cpp: ${#files[@]} files formatted"
fi
