#!/usr/bin/env bash
# The multi-node suite: starts a head and a worker Ray node on this machine (separate
# `ray start` processes), runs a smoke sweep across them and kills the worker node mid-trial,
# and runs the chaos sweep (tests/cluster/test_chaos.py; `-m chaos -s` runs it alone and shows
# its tally). CI runs it after scripts/test.sh. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=disabled WANDB_MODE=offline WANDB_SILENT=true
exec .venv/bin/python -m pytest -q -p no:cacheprovider -m cluster "$@"
