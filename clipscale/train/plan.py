"""What a run will do, stage by stage: tokens, FLOPs per sample and compute. Pure functions of
the config, shared by the training loop, the results rows and the sweep's dry run."""
from __future__ import annotations

from dataclasses import dataclass

from clipscale.config import RunConfig, StageConfig


@dataclass(frozen=True)
class StagePlan:
    index: int
    samples: int
    image_size: int
    grid: int                 # patches per side
    image_tokens: int         # patch tokens the image tower sees (after masking)
    text_tokens: int          # text tokens the text tower sees (after reduction)
    train_flops_per_sample: float
    compute: float            # train_flops_per_sample * samples


def kept_patches(grid: int, stage: StageConfig) -> int:
    total = grid * grid
    if stage.image_reduction in ("random", "grid", "block"):
        return max(1, round(total * stage.image_keep))
    return total


def plan_run(cfg: RunConfig) -> list[StagePlan]:
    from clipscale.models.flops import train_flops_per_sample

    spec = model_spec(cfg)
    ctx = spec.text.context_length
    plans = []
    for i, (stage, samples) in enumerate(zip(cfg.stages, cfg.stage_samples())):
        grid = stage.image_size // spec.image.patch_size
        image_tokens = kept_patches(grid, stage)
        text_tokens = stage.text_tokens or ctx
        # A mask drops tokens after the patch embedding: the convolution still embeds every patch.
        f = float(train_flops_per_sample(spec, image_tokens=image_tokens, text_tokens=text_tokens,
                                         embedded_patches=grid * grid))
        plans.append(StagePlan(i, samples, stage.image_size, grid, image_tokens, text_tokens, f, f * samples))
    return plans


def model_spec(cfg: RunConfig, vocab_size: int | None = None):
    from clipscale.models.registry import get_spec

    overrides = {"causal": cfg.model.causal_text, "pool": cfg.model.text_pool}
    if cfg.model.context_length:
        overrides["context_length"] = cfg.model.context_length
    if vocab_size:
        overrides["vocab_size"] = vocab_size
    return get_spec(cfg.model.name, **overrides)
