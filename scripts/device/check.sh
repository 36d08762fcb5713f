#!/usr/bin/env bash
# Runs on the GPU machine (see scripts/device/pack.sh): unpacks Node and node_modules, builds the
# addon against the machine's torch, runs the CUDA tests (and the fused-step tests beside them), then
# the GPU benchmark (bench/run.mjs --device cuda) with PyTorch eager in the same run. Logs and
# $OUT/RESULTS.md (bench/RESULTS.md with its CUDA section replaced by this run's) go to $OUT; copy that
# file over bench/RESULTS.md to keep the figures. BENCH_ARGS adds benchmark options (e.g. --quick);
# SKIP_BENCH=1 skips it; PYTHON (default: python3 on PATH) is the torch to build against.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/ltg-device-out}
mkdir -p "$OUT"
t0=$(date +%s)
phase() { echo "::: $1 at $(($(date +%s) - t0)) s" | tee -a "$OUT/phases.txt"; }
set -e
mkdir -p .device/bin
xz -dc .device/node.xz > .device/bin/node
chmod +x .device/bin/node
export PATH="$PWD/.device/bin:$PATH"
tar -xJf .device/node_modules.tar.xz
tar -xJf .device/mnist.tar.xz
phase unpack
{ nvidia-smi -L || true; nvcc --version | tail -1 || true; python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'available', torch.cuda.is_available())" || true; } 2>&1 | tee "$OUT/machine.txt"
export PYTHON=${PYTHON:-$(command -v python3)}
node lib/native/locate-libtorch.js --field cudaIncludeDirs | tee -a "$OUT/machine.txt"
rm -rf build
node scripts/build-native.js > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
tail -2 "$OUT/build.log"
phase build
node lib/cli/main.js info | tee -a "$OUT/machine.txt"
set +e
node node_modules/jest/bin/jest.js test/cuda test/gan/gan-step.test.ts --selectProjects unit --verbose > "$OUT/tests.log" 2>&1
rc=$?
grep -E "✓|✕|○|Tests:|●" "$OUT/tests.log" | head -80
phase "tests (exit $rc)"
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  cp bench/RESULTS.md "$OUT/RESULTS.md"
  node bench/run.mjs --device cuda ${BENCH_ARGS:-} --out "$OUT/RESULTS.md" > "$OUT/bench.log" 2>&1
  echo "bench exit $?"
  tail -12 "$OUT/bench.log"
  phase bench
fi
exit $rc
