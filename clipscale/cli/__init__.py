"""``clipscale <verb>``: a thin dispatcher.

Each verb is one module of this package with a ``register(subparsers)`` function: it adds its
parser, defines its flags from a typed model (``clipscale.cli.flags``) and sets ``func`` (taking
the parsed args, returning an exit code). Adding a verb is adding its module and its name to
``VERBS``. Errors are handled here, once: every ``ClipscaleError`` (a bad config, an unreadable
shard, unreachable storage, ...) ends the command with exit code 2 and one line on stderr,
``clipscale VERB: error: MESSAGE``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from clipscale.cli.flags import overrides_from_flags
from clipscale.errors import EXIT_ERROR, ClipscaleError

# verb modules (clipscale.cli.<name>), in the order `clipscale --help` lists them
VERBS = ["data", "tokenizer", "curate", "train", "sweep", "eval", "export", "flops", "demo", "analyze"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipscale",
        description="CLIP scaling-law experiments on Ray: curate, train, sweep, fit.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name in VERBS:
        importlib.import_module(f"clipscale.cli.{name}").register(sub)
    return parser


def parse_args(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None):
    """Parse as ``clipscale`` does: the verb's flags, then its dotted ``--section.field`` flags."""
    parser = parser or build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides or []) + overrides_from_flags(extra, parser)
    return args


def error_message(verb: str, err: BaseException) -> str:
    return f"clipscale {verb}: error: {err}"


def main(argv: list[str] | None = None) -> int:
    # Ray's driver folds similar lines from different workers into one "[repeated Nx]" line (read
    # when ray is first imported, so set before any verb imports it): two lanes' progress lines
    # look alike, and one lane's would hide the other's.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    args = parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ClipscaleError, FileNotFoundError) as e:
        if not isinstance(e, ClipscaleError) and not e.filename:
            raise  # names no file: a fault of ours, not of the user's input; keep the traceback
        print(error_message(args.verb, e), file=sys.stderr)
        return EXIT_ERROR


__all__ = ["VERBS", "build_parser", "error_message", "main", "overrides_from_flags", "parse_args"]
