"""Gradient accumulation that keeps a contrastive loss's negatives: feature caching (GradCache,
open_clip's ``--accum-freq``), on DeepSpeed's engine.

Plain accumulation would compute the loss of each micro-batch alone, with 1/k of the global
batch as negatives: a different loss. Here a worker's local batch of ``k * b`` rows is split into
k micro-batches of b rows:

1. every micro-batch is embedded without gradients and its features are kept;
2. for micro-batch j, the towers run again with gradients, the loss is computed over the whole
   global batch (the cached features with slot j replaced by the live ones, gathered over ranks
   as in a full-batch step), and ``engine.backward`` sends gradient into slot j only.

Slot j's backward gives exactly slot j's share of the full-batch gradient, so the k backwards sum
to the full-batch gradient (``scale_wrt_gas=False``: DeepSpeed must not divide by k). The
temperature (and SigLIP's bias) enter every micro-step's loss; they stay live in the first one
only, so their gradient is counted once, not k times (open_clip's loop counts it k times).
DeepSpeed is configured with ``gradient_accumulation_steps = k`` (deepspeed_config.py), so its
``step()`` after each backward updates the parameters only after the k-th.

Costs: one extra forward per micro-batch (about +1/3 of a step's FLOPs) and the features of the
local batch; memory for activations is that of b rows, not k * b.
"""
from __future__ import annotations

import torch

from clipscale.train.step import Batch, compute_loss


def split_batch(batch: Batch, steps: int) -> list[Batch]:
    """``steps`` micro-batches of equal size, in row order (concatenated back, they are ``batch``)."""
    rows = batch.images.shape[0]
    if rows % steps:
        raise ValueError(f"a local batch of {rows} rows does not split into {steps} equal micro-batches")
    size = rows // steps

    def part(t, j):
        return None if t is None else t[j * size:(j + 1) * size]

    return [Batch(part(batch.images, j), part(batch.tokens, j), part(batch.patch_keep, j))
            for j in range(steps)]


FEATURES = ("image_features", "text_features")
SHARED = ("logit_scale", "logit_bias")


def accumulated_step(engine, batch: Batch, steps: int, *, lr: float, loss: str) -> dict:
    """One optimizer step over ``batch`` in ``steps`` micro-batches; same loss and update as
    ``train_step(engine, batch, ...)`` up to float rounding (tests/test_accumulation.py)."""
    for group in engine.optimizer.param_groups:
        group["lr"] = lr
    micro = split_batch(batch, steps)
    with torch.no_grad():
        cached = [engine(m.images, m.tokens, patch_keep=m.patch_keep) for m in micro]
    value = None
    for j, m in enumerate(micro):
        out = engine(m.images, m.tokens, patch_keep=m.patch_keep)
        merged = {k: torch.cat([c[k] for c in cached[:j]] + [out[k]] + [c[k] for c in cached[j + 1:]])
                  for k in FEATURES}
        for k in SHARED:
            if out.get(k) is not None:
                merged[k] = out[k] if j == 0 else out[k].detach()
        loss_j = compute_loss(merged, loss)
        engine.backward(loss_j, scale_wrt_gas=False)
        engine.step()
        if j == 0:
            value = loss_j.detach()
            logit_scale = float(out["logit_scale"].detach())
    return {"loss": value.item(), "lr": lr, "logit_scale": logit_scale}
