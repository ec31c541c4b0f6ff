"""``clipscale analyze``: the same figures and report as analysis/scripts/make_figures.py."""
from __future__ import annotations

import argparse
import sys

from analysis.checks import DegenerateInputError

# the figure stack (pandas, scipy, matplotlib) is imported only when the verb runs: `clipscale --help`
# and the other verbs should not pay for it
REFERENCE = "reference"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", default=None,
                        help="results parquet folder/file (a path, or an s3://, gs:// or file:// URI), "
                             "Ray Tune experiment folder, W&B offline folder, "
                             f"wandb:ENTITY/PROJECT, or '{REFERENCE}'")
    parser.add_argument("--out", default="figures", help="output folder (default: ./figures)")
    parser.add_argument("--reference", action="store_true",
                        help="figures from the published reference data (same as SOURCE=reference)")
    parser.add_argument("--reference-dir", default=None, help="reference data folder (default: ../shared/reference)")
    parser.add_argument("--metric", default="zeroshot_top1_mean", help="accuracy column whose error is fitted")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pdf", action="store_true", help="PNG figures only")


def run(args: argparse.Namespace) -> int:
    from analysis.figures import make_all

    source = REFERENCE if args.reference else args.source
    if source is None:
        print("analyze: give a SOURCE or --reference", file=sys.stderr)
        return 2
    try:
        paths = make_all(source, args.out, n_resamples=args.bootstrap, seed=args.seed,
                         reference_dir=args.reference_dir, metric=args.metric, pdf=not args.no_pdf)
    except (DegenerateInputError, FileNotFoundError) as err:
        print(f"analyze: {err}", file=sys.stderr)
        return 1
    for name in sorted(paths):
        print(paths[name])
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``analyze`` subcommand; the caller dispatches with ``args.func(args)``."""
    parser = subparsers.add_parser("analyze", help="fit scaling laws and write figures and a report",
                                   description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make_figures.py", description="Regenerate every figure and the report.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
