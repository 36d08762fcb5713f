#!/usr/bin/env bash
# Installs everything a fresh machine needs, LibTorch included, then builds the package:
#   1. PyPI's torch at the version the package pins (package.json "libtorch.version": what the shipped
#      prebuild is built for and the parity fixtures were made with; a CUDA build of LibTorch that also
#      runs on CPU) into a project-local .venv, reused when it already holds exactly these versions;
#      also numpy, safetensors, tensorboard, onnx and onnxruntime (the reference readers of the tests) and clang-format
#      (the C++ linter, scripts/lint-cpp.sh), all pinned;
#   2. npm dependencies, the TypeScript build and the native addon (npm install runs scripts/install.js).
# Optional Debian packages (chromium, dataset-fashion-mnist) let more tests run; they skip without them.
# Environment: PYTHON_BOOTSTRAP (default python3) makes the .venv; LTG_APT=0 skips the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BOOTSTRAP:-python3}
command -v node >/dev/null || { echo "setup: node (>= 20.19) is not on PATH; install Node.js first" >&2; exit 1; }
TORCH=$(node -p "require('./package.json').libtorch.version")
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
# (~130 kB). With it the addon compiles its CUDA-graph code (ATen/cuda headers include cuda_runtime_api.h).
crt=$(.venv/bin/python - <<'PY'
import importlib.metadata as md, pathlib, sysconfig
try:
    v = md.version("nvidia-cuda-runtime")
except md.PackageNotFoundError:
    v = None
inc = list(pathlib.Path(sysconfig.get_paths()["purelib"], "nvidia").glob("*/include/cuda_runtime_api.h"))
if v and inc and not (inc[0].parent / "crt" / "host_defines.h").exists():
    print(f"nvidia-cuda-crt=={v}")
PY
)
if [ -n "$crt" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps "$crt" \
    || echo "setup: $crt not installed; the addon builds without CUDA graphs"
fi
export PYTHON="$PWD/.venv/bin/python"
if [ "${LTG_APT:-1}" = 1 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dataset-fashion-mnist >/dev/null) \
    || echo "setup: optional Debian packages (chromium, dataset-fashion-mnist) not installed; their tests will skip"
fi
# onnxruntime-node (a test reader) would fetch its CUDA provider from NuGet when npm runs its install script
export ONNXRUNTIME_NODE_INSTALL=skip
npm install --no-audit --no-fund
