#!/usr/bin/env bash
# A venv holding PyPI's torch at VERSION (with the CUDA headers the addon's CUDA-graph code needs), for
# building that version's prebuilt binary (scripts/make-prebuild.js) and for the install test's project
# on another LibTorch. Reused when it already holds that version. Prints the venv's python.
#   bash scripts/torch-venv.sh VERSION [DIR]     DIR defaults to .venv-torch/VERSION (git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: torch-venv.sh VERSION [DIR]}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "torch-venv: expected a torch version like 2.11.0, got '$version'" >&2; exit 2; }
dir=${2:-.venv-torch/$version}
PY=${PYTHON_BOOTSTRAP:-python3}
have=$("$dir/bin/python" -c "import importlib.metadata as m; print(m.version('torch').split('+')[0])" 2>/dev/null || true)
if [ "$have" != "$version" ]; then
  [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$version" >&2
fi
bash scripts/cuda-headers.sh "$dir" >&2
echo "$PWD/$dir/bin/python"
