"""The training step: a plain function of (engine, batch) returning metrics.

Everything around it (when to evaluate, checkpoint, log) is the loop's business; Ray and
DeepSpeed stay at the edges: ``engine`` is anything with ``__call__``, ``backward``, ``step``
and an optimizer whose param groups take an ``lr``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from clipscale.train.loss import clip_softmax_loss, sigmoid_loss


@dataclass
class Batch:
    images: torch.Tensor                  # float NCHW, normalised
    tokens: torch.Tensor                  # long [B, L]
    patch_keep: torch.Tensor | None = None  # long [B, K]: patch tokens kept by a mask reduction


def compute_loss(out: dict, loss: str) -> torch.Tensor:
    if loss == "softmax":
        return clip_softmax_loss(out["image_features"], out["text_features"], out["logit_scale"])
    return sigmoid_loss(out["image_features"], out["text_features"], out["logit_scale"], out["logit_bias"])


def train_step(engine, batch: Batch, *, lr: float, loss: str) -> dict:
    for group in engine.optimizer.param_groups:
        group["lr"] = lr
    out = engine(batch.images, batch.tokens, patch_keep=batch.patch_keep)
    value = compute_loss(out, loss)
    engine.backward(value)
    engine.step()
    return {"loss": value.item(), "lr": lr, "logit_scale": float(out["logit_scale"].detach())}
