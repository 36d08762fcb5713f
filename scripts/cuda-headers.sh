#!/usr/bin/env bash
# Completes the CUDA runtime headers of a pip CUDA torch in the venv DIR: pip's nvidia-cuda-runtime ships
# cuda_runtime_api.h without crt/, which comes apart as nvidia-cuda-crt (~130 kB) at the runtime's own
# CUDA minor version. With it the addon compiles its CUDA-graph code (ATen/cuda headers include cuda_runtime_api.h)
# against the CUDA that torch was built with. Does nothing for a CPU torch or headers already complete.
#   bash scripts/cuda-headers.sh DIR
set -euo pipefail
venv=${1:?usage: cuda-headers.sh VENV_DIR}
crt=$("$venv/bin/python" - <<'PY'
import importlib.metadata as md, pathlib, sysconfig
try:
    v = md.version("nvidia-cuda-runtime")
except md.PackageNotFoundError:
    v = None
inc = list(pathlib.Path(sysconfig.get_paths()["purelib"], "nvidia").glob("*/include/cuda_runtime_api.h"))
if v and inc and not (inc[0].parent / "crt" / "host_defines.h").exists():
    # the same CUDA minor (crt has no release for every runtime patch: 13.0.96 pairs with 13.0.88)
    print("nvidia-cuda-crt==" + ".".join(v.split(".")[:2]) + ".*")
PY
)
if [ -n "$crt" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$crt" \
    || echo "cuda-headers: $crt not installed; the addon builds without CUDA graphs" >&2
fi
