#!/usr/bin/env bash
# Installs everything a fresh machine needs, LibTorch included, then builds the package:
#   1. PyPI's torch at the version the package pins (package.json "libtorch.version": its default, what
#      the parity fixtures were made with; a CUDA build of LibTorch that also runs on CPU), or another
#      supported one (LTG_TORCH=2.11.0), into a project-local .venv, reused when it already holds exactly
#      these versions;
#      also numpy, safetensors, tensorboard, onnx and onnxruntime (the reference readers of the tests) and clang-format
#      (the C++ linter, scripts/lint-cpp.sh), all pinned;
#   2. npm dependencies, the TypeScript build and the native addon (npm install runs scripts/install.js).
# Optional Debian packages (chromium, dataset-fashion-mnist) let more tests run; they skip without them.
# Environment: PYTHON_BOOTSTRAP (default python3) makes the .venv; LTG_APT=0 skips the Debian packages;
# LTG_TORCH picks another supported torch version than the default.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BOOTSTRAP:-python3}
command -v node >/dev/null || { echo "setup: node (>= 20.19) is not on PATH; install Node.js first" >&2; exit 1; }
TORCH=${LTG_TORCH:-$(node -p "require('./package.json').libtorch.version")}
# Another supported torch than the default: LTG_TORCH=2.11.0 (the parity fixtures are made with the default).
node -e '
const lt = require("./package.json").libtorch, v = process.argv[1];
const minor = v.split(".").slice(0, 2).join(".");
if (!/^\d+\.\d+\.\d+$/.test(v) || !(lt.supported || [lt.version]).includes(minor)) {
  console.error(`setup: LTG_TORCH=${v} is not a supported torch version (x.y.z, from ${(lt.supported || []).join(", ")})`);
  process.exit(2);
}' "$TORCH"
PINS=("torch==$TORCH" numpy==2.4.6 safetensors==0.8.0 tensorboard==2.21.0 scipy==1.17.1 clang-format==21.1.8 onnx==1.23.2 onnxruntime==1.32.0)
# Exit 0 when the .venv holds every pin (by package metadata: importing torch takes seconds).
have_pins() {
  [ -x .venv/bin/python ] || return 1
  .venv/bin/python - "$@" <<'PY'
import importlib.metadata as md, sys
bad = []
for req in sys.argv[1:]:
    name, want = req.split("==")
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        have = "none"
    if have.split("+")[0] != want:
        bad.append(f"{name} {have} (want {want})")
if bad:
    print("setup: .venv has " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
}
if ! have_pins "${PINS[@]}"; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "${PINS[@]}"
  have_pins "${PINS[@]}" || { echo "setup: pip did not install the pinned versions (see above)" >&2; exit 1; }
fi
# A CUDA build of torch: pip's CUDA runtime headers lack crt/, which ships apart as nvidia-cuda-crt
# (~130 kB). With it the addon compiles its CUDA-graph code against torch's own CUDA version.
bash scripts/cuda-headers.sh .venv
export PYTHON="$PWD/.venv/bin/python"
if [ "${LTG_APT:-1}" = 1 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist >/dev/null) \
    || echo "setup: optional Debian packages (chromium, dataset-fashion-mnist) not installed; their tests will skip"
fi
# onnxruntime-node (a test reader) would fetch its CUDA provider from NuGet when npm runs its install script
export ONNXRUNTIME_NODE_INSTALL=skip
npm install --no-audit --no-fund
