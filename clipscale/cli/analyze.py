"""``clipscale analyze``: the same figures and report as analysis/scripts/make_figures.py."""
from __future__ import annotations

import argparse

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import add_model_flags, model_from_args

# the figure stack (pandas, scipy, matplotlib) is imported only when the verb runs: `clipscale --help`
# and the other verbs should not pay for it


class AnalyzeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(None, description="results parquet folder/file (a path, or an s3://, gs:// or "
                                                 "file:// URI), Ray Tune experiment folder, W&B offline folder, "
                                                 "wandb:ENTITY/PROJECT, or 'reference'")
    out: str = Field("figures", description="output folder")
    reference: bool = Field(False, description="figures from the published reference data (same as SOURCE=reference)")
    reference_dir: str | None = Field(None, description="reference data folder (unset: ../shared/reference)")
    metric: str = Field("zeroshot_top1_mean", description="accuracy column whose error is fitted")
    bootstrap: int = Field(200, ge=1, description="bootstrap resamples")
    seed: int = Field(0, description="bootstrap seed")
    pdf: bool = Field(True, description="PDF figures next to the PNGs")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``analyze`` subcommand; the caller dispatches with ``args.func(args)``."""
    parser = subparsers.add_parser("analyze", help="fit scaling laws and write figures and a report",
                                   description=__doc__)
    add_model_flags(parser, AnalyzeOptions, positional=("source",))
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from analysis.figures import REFERENCE, make_all
    from clipscale.errors import ConfigError

    opts = model_from_args(args, AnalyzeOptions, kind="analyze options")
    source = REFERENCE if opts.reference else opts.source
    if source is None:
        raise ConfigError("give a SOURCE or --reference")
    paths = make_all(source, opts.out, n_resamples=opts.bootstrap, seed=opts.seed,
                     reference_dir=opts.reference_dir, metric=opts.metric, pdf=opts.pdf)
    for name in sorted(paths):
        print(paths[name])
    return 0
