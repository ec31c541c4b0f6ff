"""``clipscale data emoji-world --out DIR``: generate the built-in pool and its evaluation sets;
``clipscale data lexicons --out DIR``: write the per-language emoji-name lexicons alone.

Every EmojiWorldConfig field is a flag (``num_samples`` -> ``--num-samples``); unset flags keep
the config's default. ``--config FILE`` (YAML or JSON) gives a base config the flags override."""
from __future__ import annotations

import argparse
import json

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import add_model_flags, model_from_args


class EmojiWorldOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: str = Field(description="output folder")
    config: str | None = Field(None, description="base EmojiWorldConfig as YAML or JSON; flags override it")
    workers: int = Field(1, ge=1, description="processes writing shards")


class LexiconsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: str = Field(description="output folder (<lang>.txt per language)")
    languages: list[str] | None = Field(None, description="languages (unset: all 14)")


def register(sub) -> None:
    from clipscale.data.emoji_world import EmojiWorldConfig

    data = sub.add_parser("data", help="built-in datasets (emoji world)")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    p = dsub.add_parser("emoji-world", help="generate the emoji-world pool and evaluation sets",
                        description="Write OUT/pool/shard-*.tar, OUT/eval/, OUT/lexicons/ and "
                                    "OUT/summary.json. Same flags and seed: byte-identical shards.")
    add_model_flags(p, EmojiWorldOptions)
    add_model_flags(p.add_argument_group("emoji world (EmojiWorldConfig)"), EmojiWorldConfig)
    p.set_defaults(func=run_emoji_world)

    lx = dsub.add_parser("lexicons", help="write one emoji-name lexicon per language")
    add_model_flags(lx, LexiconsOptions)
    lx.set_defaults(func=run_lexicons)


def config_from_args(args: argparse.Namespace):
    """The EmojiWorldConfig of the ``--config`` file (if any) with the flags given over it."""
    from clipscale.config_core import read_yaml
    from clipscale.data.emoji_world import EmojiWorldConfig

    opts = model_from_args(args, EmojiWorldOptions, kind="emoji-world options")
    base = read_yaml(opts.config) if opts.config else {}
    return model_from_args(args, EmojiWorldConfig, base, opts.config or "command line", "emoji-world config")


def run_emoji_world(args: argparse.Namespace) -> int:
    from clipscale.data.emoji_world import generate_pool

    opts = model_from_args(args, EmojiWorldOptions, kind="emoji-world options")
    cfg = config_from_args(args)
    summary = generate_pool(cfg, opts.out, workers=opts.workers)
    brief = {k: summary[k] for k in ("num_samples", "num_shards", "noise", "num_concepts",
                                     "languages", "pool_dir", "eval_dir")}
    print(json.dumps(brief, indent=1))
    return 0


def run_lexicons(args: argparse.Namespace) -> int:
    from clipscale.data.emoji_text import write_lexicons

    opts = model_from_args(args, LexiconsOptions, kind="lexicons options")
    paths = write_lexicons(opts.out, opts.languages)
    print(f"wrote {len(paths)} lexicons to {opts.out}")
    return 0
