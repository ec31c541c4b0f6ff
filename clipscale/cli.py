"""``clipscale <verb>``: a thin dispatcher. Each verb lives in its own module with a
``register(subparsers)`` function; flags map onto the same typed configs the YAML files fill."""
from __future__ import annotations

import argparse
import importlib
import sys

# verb modules, in the order `clipscale --help` lists them
VERB_MODULES = [
    "clipscale.cli_data",
    "clipscale.cli_tokenizer",
    "clipscale.cli_curate",
    "clipscale.cli_train",
    "clipscale.cli_sweep",
    "clipscale.cli_eval",
    "clipscale.cli_flops",
    "clipscale.cli_demo",
    "clipscale.cli_export",
    "analysis.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipscale",
        description="CLIP scaling-law experiments on Ray: curate, train, sweep, fit.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from clipscale.config import ConfigError
    from clipscale.data.shards import ShardError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides or []) + overrides_from_flags(extra, parser)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, ShardError, FileNotFoundError) as e:
        if isinstance(e, FileNotFoundError) and not e.filename:
            raise  # names no file: a fault of ours, not of the user's input; keep the traceback
        print(f"clipscale {args.verb}: error: {e}", file=sys.stderr)
        return 2


def overrides_from_flags(extra: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``--train.lr 3e-4`` or ``--train.lr=3e-4`` -> ``train.lr=3e-4`` (any config field)."""
    out, i = [], 0
    while i < len(extra):
        flag = extra[i]
        if not flag.startswith("--") or "." not in flag.split("=")[0]:
            parser.error(f"unrecognized argument {flag!r} (config fields are --section.field VALUE)")
        if "=" in flag:
            out.append(flag[2:])
            i += 1
        elif i + 1 < len(extra):
            out.append(f"{flag[2:]}={extra[i + 1]}")
            i += 2
        else:
            parser.error(f"{flag} needs a value")
    return out


if __name__ == "__main__":
    sys.exit(main())
