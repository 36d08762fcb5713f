#!/usr/bin/env bash
# Regenerates the committed parity fixtures (test/parity/fixtures/*.json) from ts/gan/presets/index.ts.
# Usage: test/parity/regenerate.sh [extra reference.py args, e.g. --full --out /tmp/parity]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/node_modules/.bin/tsc" -p "$root/tsconfig.build.json" --outDir "$tmp/js" --declaration false --sourceMap false
# With the lr-schedule variant (lr-schedule.json): a preset whose learning rate changes before each step;
# and the recipes' variants (recipes.json): presets with recipe fields in their step spec.
NODE_PATH="$root/node_modules" node -e "
const all = require(process.argv[1]).presets;
const names = ['seed000', 'udacity', 'ganist', 'tensorboard', 'vanilla', 'dcgan', 'cgan'];
const presets = Object.fromEntries(names.map((n) => [n, all[n]]));
const lr = require(process.argv[2]);
const recipes = Object.fromEntries(require(process.argv[3]).map((v) => [v.name, { ...all[v.base], step: { ...presets[v.base].step, ...v.step } }]));
process.stdout.write(JSON.stringify({ ...presets, [lr.name]: { ...presets[lr.base], lrSchedule: lr.lrSchedule }, ...recipes }));
" "$tmp/js/gan/presets/index.js" "$root/test/parity/lr-schedule.json" "$root/test/parity/recipes.json" > "$tmp/presets.json"
"$py" "$root/test/parity/reference.py" gan --presets "$tmp/presets.json" --out "$root/test/parity/fixtures" "$@"
