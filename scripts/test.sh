#!/usr/bin/env bash
# Run the test suite (after scripts/setup.sh). Extra arguments go to pytest.
# The multi-node cluster suite is separate: scripts/test_cluster.sh (CI runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=disabled WANDB_MODE=offline WANDB_SILENT=true
exec .venv/bin/python -m pytest -q -p no:cacheprovider -m "not cluster" "$@"
