#!/usr/bin/env bash
# Run the test suite (after scripts/setup.sh). Extra arguments go to pytest.
# Separate suites, which CI also runs: scripts/test_long.sh (kill-and-resume runs, ~9 minutes) and
# scripts/test_cluster.sh (the multi-node suite).
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=disabled WANDB_MODE=offline WANDB_SILENT=true
exec .venv/bin/python -m pytest -q -p no:cacheprovider -m "not cluster and not long" "$@"
