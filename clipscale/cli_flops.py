"""``clipscale flops``: parameters and analytic FLOPs per sample of registered models."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("flops", help="print parameters and FLOPs per sample of model sizes",
                       description="Analytic forward and training (3 x forward) GFLOPs per (image, text) "
                                   "sample; matmuls counted as 2 x MACs.")
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="model names (default: every registered size)")
    p.add_argument("--image-size", type=int, default=224,
                   help="image side in pixels (default 224; 0 = each model's native size)")
    p.add_argument("--text-tokens", type=int, default=77, help="text sequence length (default 77)")
    p.add_argument("--image-tokens", type=int, default=None,
                   help="patch tokens kept after masking (default: all patches at --image-size)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clipscale.models.flops import flops_table, format_flops_table

    try:
        rows = flops_table(args.models, image_size=args.image_size or None, text_tokens=args.text_tokens,
                           image_tokens=args.image_tokens)
    except (KeyError, ValueError) as e:
        print(f"clipscale flops: error: {e.args[0] if e.args else e}")
        return 2
    print(format_flops_table(rows))
    return 0
