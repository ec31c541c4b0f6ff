"""``clipscale data emoji-world --out DIR``: generate the built-in pool and its evaluation sets;
``clipscale data lexicons --out DIR``: write the per-language emoji-name lexicons alone.

Every EmojiWorldConfig field is a flag (``num_samples`` -> ``--num-samples``); unset flags keep
the config's default. ``--config FILE`` (YAML or JSON) gives a base config the flags override."""
from __future__ import annotations

import argparse
import json
import typing


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_mix(text: str) -> dict[str, float]:
    """``en=0.3,es=0.2`` -> {"en": 0.3, "es": 0.2}."""
    out = {}
    for part in text.split(","):
        lang, _, value = part.partition("=")
        if not value:
            raise argparse.ArgumentTypeError(f"expected LANG=SHARE, got {part!r}")
        out[lang.strip()] = float(value)
    return out


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    from clipscale.data.emoji_world import EmojiWorldConfig

    for name, f in EmojiWorldConfig.model_fields.items():
        ann = f.annotation
        help_ = f"{f.description} (default: {f.get_default(call_default_factory=True)})"
        if name == "languages":
            p.add_argument(_flag(name), type=lambda s: [x.strip() for x in s.split(",")],
                           metavar="en,es,...", help=help_)
        elif name == "language_mix":
            p.add_argument(_flag(name), type=_parse_mix, metavar="en=0.3,es=0.2,...", help=help_)
        elif typing.get_origin(ann) is typing.Literal:
            p.add_argument(_flag(name), choices=typing.get_args(ann), help=help_)
        else:
            base = next((t for t in (int, float) if t in (ann, *typing.get_args(ann))), str)
            p.add_argument(_flag(name), type=base, help=help_)


def register(sub) -> None:
    data = sub.add_parser("data", help="built-in datasets (emoji world)")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    p = dsub.add_parser("emoji-world", help="generate the emoji-world pool and evaluation sets",
                        description="Write OUT/pool/shard-*.tar, OUT/eval/, OUT/lexicons/ and "
                                    "OUT/summary.json. Same flags and seed: byte-identical shards.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="base EmojiWorldConfig as YAML or JSON; flags override it")
    p.add_argument("--workers", type=int, default=1, help="processes writing shards")
    _add_config_flags(p)
    p.set_defaults(func=run_emoji_world)

    lx = dsub.add_parser("lexicons", help="write one emoji-name lexicon per language")
    lx.add_argument("--out", required=True, help="output folder (<lang>.txt per language)")
    lx.add_argument("--languages", type=lambda s: [x.strip() for x in s.split(",")],
                    help="languages (default: all 14)")
    lx.set_defaults(func=run_lexicons)


def config_from_args(args: argparse.Namespace):
    from pydantic import ValidationError

    from clipscale.config import ConfigError
    from clipscale.data.emoji_world import EmojiWorldConfig

    base: dict = {}
    if args.config:
        import yaml
        with open(args.config, encoding="utf-8") as f:
            base = yaml.safe_load(f) or {}
    for name in EmojiWorldConfig.model_fields:
        value = getattr(args, name, None)
        if value is not None:
            base[name] = value
    try:
        return EmojiWorldConfig.model_validate(base)
    except ValidationError as e:
        raise ConfigError(f"emoji-world config: {e}") from e


def run_emoji_world(args: argparse.Namespace) -> int:
    from clipscale.data.emoji_world import generate_pool

    cfg = config_from_args(args)
    summary = generate_pool(cfg, args.out, workers=args.workers)
    brief = {k: summary[k] for k in ("num_samples", "num_shards", "noise", "num_concepts",
                                     "languages", "pool_dir", "eval_dir")}
    print(json.dumps(brief, indent=1))
    return 0


def run_lexicons(args: argparse.Namespace) -> int:
    from clipscale.data.emoji_text import write_lexicons

    paths = write_lexicons(args.out, args.languages)
    print(f"wrote {len(paths)} lexicons to {args.out}")
    return 0
