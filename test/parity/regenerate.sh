#!/usr/bin/env bash
# Regenerates the committed parity fixtures (test/parity/fixtures/*.json) from ts/gan/presets.ts.
# Usage: test/parity/regenerate.sh [extra reference.py args, e.g. --full --out /tmp/parity]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/node_modules/.bin/tsc" --outDir "$tmp/js" --rootDir "$root/ts" --module commonjs --target es2022 \
  --lib es2022 --types node --skipLibCheck "$root/ts/gan/presets.ts"
node -e "process.stdout.write(JSON.stringify(require(process.argv[1]).presets))" "$tmp/js/gan/presets.js" > "$tmp/presets.json"
"$py" "$root/test/parity/reference.py" gan --presets "$tmp/presets.json" --out "$root/test/parity/fixtures" "$@"
