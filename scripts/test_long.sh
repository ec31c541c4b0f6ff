#!/usr/bin/env bash
# The long suite (after scripts/setup.sh): kill-and-resume runs (a killed worker, a killed driver,
# SIGTERM, a damaged checkpoint, a killed lane), cooldown forks resumed from their own checkpoint,
# and the secrets scan over everything a run and a sweep write. ~9 minutes on 2 cores; kept out of
# scripts/test.sh so the default suite stays near 10 minutes. CI runs it after scripts/test.sh.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_AUTH_MODE=disabled WANDB_MODE=offline WANDB_SILENT=true
exec .venv/bin/python -m pytest -q -p no:cacheprovider -m "long and not cluster" "$@"
