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
    if stage.image_reduction.masks:
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


def compute_by_stage(plans: list[StagePlan], samples_seen: int) -> list[float]:
    """Training FLOPs spent in each stage once ``samples_seen`` samples have been seen."""
    out, start = [], 0
    for p in plans:
        out.append(min(max(samples_seen - start, 0), p.samples) * p.train_flops_per_sample)
        start += p.samples
    return out


def stage_columns(plans: list[StagePlan], samples_seen: int) -> dict:
    """Per-stage results-row columns: ``stage<i>_{samples,image_tokens,text_tokens,
    train_flops_per_sample,compute}`` (the row's ``compute`` is their sum)."""
    row = {"stages": len(plans)}
    for p, c in zip(plans, compute_by_stage(plans, samples_seen)):
        row.update({f"stage{p.index}_samples": p.samples, f"stage{p.index}_image_tokens": p.image_tokens,
                    f"stage{p.index}_text_tokens": p.text_tokens,
                    f"stage{p.index}_train_flops_per_sample": p.train_flops_per_sample,
                    f"stage{p.index}_compute": c})
    return row


def model_spec(cfg: RunConfig, vocab_size: int | None = None):
    from clipscale.models.registry import get_spec

    overrides = {"causal": cfg.model.causal_text, "pool": cfg.model.text_pool}
    if cfg.model.context_length:
        overrides["context_length"] = cfg.model.context_length
    if vocab_size:
        overrides["vocab_size"] = vocab_size
    return get_spec(cfg.model.name, **overrides)
