#!/usr/bin/env bash
# Set up clipscale in a virtual environment (.venv) on a fresh machine.
# Order matters: torch first (pinned, so pip never resolves a CUDA build), then DeepSpeed
# without build isolation (its setup imports torch), then the project and the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip wheel setuptools
pip install -q torch==2.13.0
DS_BUILD_OPS=0 pip install -q --no-build-isolation deepspeed==0.19.8
pip install -q -e ".[test]"
pip install -q --no-deps clip-benchmark==1.6.2  # pyproject extra "bench"; its own deps would move torch
python -c "import torch, ray, deepspeed, wandb; print('torch', torch.__version__, '| ray', ray.__version__, '| deepspeed', deepspeed.__version__, '| wandb', wandb.__version__)"
