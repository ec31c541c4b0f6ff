#!/usr/bin/env bash
# Set up clipscale in a virtual environment (.venv) on a fresh machine.
# Order matters: torch and torchvision first (pinned together, so pip never resolves a CUDA torch), then DeepSpeed
# without build isolation (its setup imports torch), then the project and the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip wheel setuptools
pip install -q torch==2.13.0 torchvision==0.28.0
DS_BUILD_OPS=0 pip install -q --no-build-isolation deepspeed==0.19.8
pip install -q -e ".[test]"
# img2dataset (its writer classes build the tests' img2dataset folders) pins webdataset<0.3 and
# pandas<3, which clip-benchmark's webdataset and the project's pandas exceed: it goes beside the
# environment, without its dependencies, where the tests import its writer module from
pip install -q --no-deps --upgrade --target .venv/extras/img2dataset img2dataset==1.47.0
pip check
python -c "import torch, ray, deepspeed, wandb; print('torch', torch.__version__, '| ray', ray.__version__, '| deepspeed', deepspeed.__version__, '| wandb', wandb.__version__)"
python -c "from clipscale.torchvision_compat import ensure_torchvision_importable as e; e(); import open_clip, clip_benchmark; print('open_clip', open_clip.__version__)"
