"""The named choices of the run config, as enums once validated.

Each is a ``str`` enum: YAML files and command-line flags give the plain value (``loss:
sigmoid``), comparisons with strings keep working (``LossKind.SIGMOID == "sigmoid"``), and
``str()``/f-strings give the value, so messages and results rows read as before (the results
table stores the plain string; see clipscale/results.py).
"""
from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class LossKind(Choice):
    """The contrastive loss: CLIP's softmax over the batch, or SigLIP's pairwise sigmoid."""
    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"


class Precision(Choice):
    """Training precision; AUTO is bf16 on GPU, fp32 on CPU."""
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


class ImageReduction(Choice):
    """How image tokens are reduced (docs/token_reduction.md): RESIZE lowers image_size; RANDOM,
    GRID and BLOCK mask patches."""
    NONE = "none"
    RESIZE = "resize"
    RANDOM = "random"
    GRID = "grid"
    BLOCK = "block"

    @property
    def masks(self) -> bool:
        return self in MASK_REDUCTIONS


MASK_REDUCTIONS = frozenset({ImageReduction.RANDOM, ImageReduction.GRID, ImageReduction.BLOCK})


class TextReduction(Choice):
    """How a caption is cut to text_tokens (docs/token_reduction.md)."""
    TRUNCATE = "truncate"
    RANDOM = "random"
    BLOCK = "block"
    SYNTAX = "syntax"


def plain(value):
    """A choice as its plain string (anything else unchanged): what a results row stores."""
    return value.value if isinstance(value, Enum) else value
