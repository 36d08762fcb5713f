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
# the recipes' variants (recipes.json): presets with recipe fields in their step spec; and the precision
# variants (precision.json): presets trained under autocast (a GanStep option, given to reference.py in the preset).
NODE_PATH="$root/node_modules" node -e "
const all = require(process.argv[1]).presets;
const names = ['seed000', 'udacity', 'ganist', 'tensorboard', 'vanilla', 'dcgan', 'cgan'];
const presets = Object.fromEntries(names.map((n) => [n, all[n]]));
const lr = require(process.argv[2]);
const recipes = Object.fromEntries(require(process.argv[3]).map((v) => [v.name, { ...all[v.base], step: { ...presets[v.base].step, ...v.step } }]));
const precision = Object.fromEntries(require(process.argv[4]).map((v) => [v.name, { ...all[v.base], precision: v.precision }]));
process.stdout.write(JSON.stringify({ ...presets, [lr.name]: { ...presets[lr.base], lrSchedule: lr.lrSchedule }, ...recipes, ...precision }));
" "$tmp/js/gan/presets/index.js" "$root/test/parity/lr-schedule.json" "$root/test/parity/recipes.json" "$root/test/parity/precision.json" > "$tmp/presets.json"
"$py" "$root/test/parity/reference.py" gan --presets "$tmp/presets.json" --out "$root/test/parity/fixtures" "$@"
