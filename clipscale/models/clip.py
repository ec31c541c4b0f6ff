"""CLIP: image and text towers, L2-normalized features, learnable temperature (and bias for SigLIP)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from clipscale.models.registry import ModelSpec
from clipscale.models.text import TextTransformer
from clipscale.models.vit import VisionTransformer

# Initial values: CLIP's temperature 0.07; SigLIP's scale 10 and bias -10 (the bias offsets the
# many negatives so the initial sigmoid loss is not dominated by them).
INIT_LOGIT_SCALE = {"softmax": math.log(1 / 0.07), "sigmoid": math.log(10.0)}
INIT_LOGIT_BIAS = {"softmax": None, "sigmoid": -10.0}
# open_clip clamps the scale at 100 after every optimizer step; clamping in forward has the same effect
# (no gradient pushes it further) without writing to parameters that ZeRO-3 may have partitioned.
MAX_LOGIT_SCALE = math.log(100.0)


class CLIP(nn.Module):
    def __init__(self, spec: ModelSpec, loss: Literal["softmax", "sigmoid"] = "softmax",
                 init_logit_scale: float | None = None, init_logit_bias: float | None = None):
        super().__init__()
        if loss not in INIT_LOGIT_SCALE:
            raise ValueError(f"loss must be 'softmax' or 'sigmoid', got {loss!r}")
        self.spec = spec
        self.visual = VisionTransformer(spec.image, spec.embed_dim)
        self.text = TextTransformer(spec.text, spec.embed_dim)
        scale = INIT_LOGIT_SCALE[loss] if init_logit_scale is None else init_logit_scale
        bias = INIT_LOGIT_BIAS[loss] if init_logit_bias is None else init_logit_bias
        # logit_scale is stored as a log; the loss uses exp(logit_scale). Shape [1], not a 0-dim
        # scalar: DeepSpeed's initial parameter broadcast views every parameter as bytes, which
        # a 0-dim tensor cannot do.
        self.logit_scale = nn.Parameter(torch.full((1,), float(scale)))
        self.logit_bias = nn.Parameter(torch.full((1,), float(bias))) if bias is not None else None

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint every transformer block of both towers (open_clip's --grad-checkpointing)."""
        self.visual.transformer.grad_checkpointing = enable
        self.text.transformer.grad_checkpointing = enable

    def encode_image(self, images: torch.Tensor, patch_keep: torch.Tensor | None = None,
                     normalize: bool = True) -> torch.Tensor:
        features = self.visual(images, patch_keep=patch_keep)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        features = self.text(tokens)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, tokens: torch.Tensor,
                patch_keep: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        """Returns image_features, text_features (L2-normalized), logit_scale (exp'd), logit_bias (or None)."""
        return {
            "image_features": self.encode_image(images, patch_keep=patch_keep),
            "text_features": self.encode_text(tokens),
            "logit_scale": self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp(),
            "logit_bias": self.logit_bias,
        }
