#!/usr/bin/env bash
# Installs everything a fresh machine needs, LibTorch included, then builds the package:
#   1. PyPI's torch (a CUDA build of LibTorch that also runs on CPU) into a project-local .venv,
#      reused when present; also numpy, safetensors and tensorboard, the reference readers of the tests;
#   2. npm dependencies, the TypeScript build and the native addon (npm install runs scripts/install.js).
# Optional Debian packages (chromium, dataset-fashion-mnist) let more tests run; they skip without them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BOOTSTRAP:-python3}
if ! .venv/bin/python -c "import torch, numpy, safetensors, tensorboard" 2>/dev/null; then
  "$PY" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check torch numpy safetensors tensorboard
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
npm install --no-audit --no-fund
