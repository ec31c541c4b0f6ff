"""From a Ray Data batch (numpy) to the tensors a training step takes, applying the stage's
token reductions. Runs on the worker: cheap tensor ops only."""
from __future__ import annotations

import numpy as np
import torch

from clipscale.choices import ImageReduction
from clipscale.config import StageConfig
from clipscale.data.images import to_tensor_batch
from clipscale.models import patch_masks
from clipscale.text.reduction import reduce_text
from clipscale.train.step import Batch

MASKS = {ImageReduction.RANDOM: patch_masks.random_mask, ImageReduction.GRID: patch_masks.grid_mask,
         ImageReduction.BLOCK: patch_masks.block_mask}


def make_batch(raw: dict, stage: StageConfig, plan, device, precision: str,
               generator: torch.Generator) -> Batch:
    images = to_tensor_batch(np.asarray(raw["image"]))
    tokens = torch.as_tensor(np.asarray(raw["tokens"]), dtype=torch.long)
    tokens = reduce_text(tokens, plan.text_tokens, stage.text_reduction, generator)
    keep = None
    if stage.image_reduction in MASKS:
        b = images.shape[0]
        keep = torch.stack([MASKS[stage.image_reduction](plan.grid, plan.grid, plan.image_tokens, generator)
                            for _ in range(b)])
        keep = keep.to(device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return Batch(images=images.to(device=device, dtype=dtype), tokens=tokens.to(device), patch_keep=keep)
