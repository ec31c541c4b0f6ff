#!/usr/bin/env python
"""Regenerate every figure, table and the report from one source.

    python analysis/scripts/make_figures.py SOURCE [--out DIR] [--reference]

SOURCE: a results parquet folder or file (a path, or an s3://, gs:// or file:// URI), a Ray Tune
experiment folder, a W&B offline folder (``wandb/`` or one ``offline-run-*``), ``wandb:ENTITY/PROJECT``
(needs WANDB_API_KEY), or ``reference``.
The same command is ``clipscale analyze``.
"""
import sys
from pathlib import Path

# runnable from a checkout without installing: the repository root holds the analysis package
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from clipscale.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["analyze", *sys.argv[1:]]))
