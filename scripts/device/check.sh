#!/usr/bin/env bash
# The GPU check on a machine lent through the device tool (no Node, no network, nothing compiled there):
# unpacks what scripts/device/pack.sh put in .device/ (Node, the runtime node_modules, MNIST), then runs
# scripts/device/check.mjs, which loads the prebuilt addon carried in prebuilds/ against the machine's
# torch (python3) and writes $OUT/check.json, $OUT/check.log and $OUT/summary.md as it goes (see there).
# From the workplace, after `bash scripts/device/pack.sh` here:
#   run(command: "bash scripts/device/check.sh", carry: [".device", "lib", "prebuilds"], timeout_s: 420)
# `bash scripts/device/check.sh --dry-run` walks the same phases here on the CPU (no unpacking).
set -uo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s%3N)
dry=0
for a in "$@"; do [ "$a" = --dry-run ] && dry=1; done
if [ "$dry" = 0 ]; then
  export OUT=${OUT:-/tmp/ltg-device-out}
  mkdir -p "$OUT"
  if [ ! -f .device/node.xz ] || [ ! -f .device/node_modules.tar.xz ]; then
    echo "check: .device/ is not here: run 'bash scripts/device/pack.sh' on the workplace and carry .device, lib and prebuilds" >&2
    exit 2
  fi
  # xz, or Python's lzma where the machine has no xz
  unxz_to_stdout() {
    if command -v xz > /dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi
  }
  set -e
  mkdir -p .device/bin
  unxz_to_stdout .device/node.xz > .device/bin/node
  chmod +x .device/bin/node
  # A worktree's node_modules symlink travels as a dangling link; build/ would win over the prebuild.
  [ -L node_modules ] && rm node_modules
  rm -rf build
  unxz_to_stdout .device/node_modules.tar.xz | tar -xf -
  unxz_to_stdout .device/mnist.tar.xz | tar -xf -
  set +e
  export PATH="$PWD/.device/bin:$PATH"
  unpack_ms=$(($(date +%s%3N) - t0))
  echo "unpacked .device/ in ${unpack_ms} ms"
  exec node scripts/device/check.mjs --t0 "$t0" --unpack-ms "$unpack_ms" "$@"
fi
exec node scripts/device/check.mjs --t0 "$t0" "$@"
