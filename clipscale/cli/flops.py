"""``clipscale flops``: parameters and analytic FLOPs per sample of registered models."""
from __future__ import annotations

import argparse

from pydantic import BaseModel, ConfigDict, Field

from clipscale.cli.flags import add_model_flags, model_from_args


class FlopsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] | None = Field(None, description="model names (unset: every registered size)")
    image_size: int = Field(224, ge=0, description="image side in pixels (0: each model's native size)")
    text_tokens: int = Field(77, ge=1, description="text sequence length")
    image_tokens: int | None = Field(None, ge=1, description="patch tokens kept after masking "
                                                             "(unset: all patches at --image-size)")


def register(sub) -> None:
    p = sub.add_parser("flops", help="print parameters and FLOPs per sample of model sizes",
                       description="Analytic forward and training (3 x forward) GFLOPs per (image, text) "
                                   "sample; matmuls counted as 2 x MACs.")
    add_model_flags(p, FlopsOptions)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clipscale.errors import ConfigError
    from clipscale.models.flops import flops_table, format_flops_table

    opts = model_from_args(args, FlopsOptions, kind="flops options")
    try:
        rows = flops_table(opts.models, image_size=opts.image_size or None, text_tokens=opts.text_tokens,
                           image_tokens=opts.image_tokens)
    except (KeyError, ValueError) as e:  # an unknown model or an impossible token count
        raise ConfigError(e.args[0] if e.args else str(e)) from None
    print(format_flops_table(rows))
    return 0
