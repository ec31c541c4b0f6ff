"""Learning-rate schedule as a pure function of samples seen (not steps), so a run's schedule
does not change when the batch size or the number of workers does."""
from __future__ import annotations

import math


def cosine_lr(samples_seen: int, base_lr: float, warmup_samples: int, total_samples: int) -> float:
    """Linear warmup from 0 to ``base_lr`` over ``warmup_samples``, then cosine decay to 0 at
    ``total_samples``."""
    if warmup_samples and samples_seen < warmup_samples:
        return base_lr * (samples_seen + 1) / warmup_samples
    span = max(1, total_samples - warmup_samples)
    progress = min(1.0, (samples_seen - warmup_samples) / span)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * progress))


def wsd_lr(samples_seen: int, base_lr: float, warmup_samples: int, total_samples: int,
           cooldown_share: float, shape: str = "1-sqrt") -> float:
    """Warmup-stable-decay (Hagele et al. 2024): linear warmup, ``base_lr`` until the last
    ``cooldown_share`` of ``total_samples``, then down to 0 linearly or as 1 - sqrt(progress).
    Before its cooldown the lr does not depend on ``total_samples``: runs of any length share
    that trunk, which is what cooldown forks (sweep/forks.py) reuse."""
    if warmup_samples and samples_seen < warmup_samples:
        return base_lr * (samples_seen + 1) / warmup_samples
    cooldown = max(1, round(cooldown_share * total_samples))
    start = total_samples - cooldown
    if samples_seen < start:
        return base_lr
    progress = min(1.0, (samples_seen - start) / cooldown)
    return base_lr * (1.0 - (math.sqrt(progress) if shape == "1-sqrt" else progress))


def stage_spans(cfg) -> list[tuple[int, int]]:
    """(first sample, end sample) of each stage on the run's samples-seen axis."""
    spans, start = [], 0
    for n in cfg.stage_samples():
        spans.append((start, start + n))
        start += n
    return spans


def lr_at(cfg, samples_seen: int) -> float:
    """The lr of the step that starts at ``samples_seen``. Without stage-level optimisation this
    is exactly ``cosine_lr`` over the whole run (the reference run's numerics); a stage with its
    own lr (CLIPA's fine-tuning, run there as a fresh job) warms up and decays over its own
    samples, measured from the stage's start."""
    t = cfg.train
    if t.schedule == "wsd":
        return wsd_lr(samples_seen, t.peak_lr, t.warmup_samples, t.samples_seen,
                      t.cooldown_share, t.cooldown_shape)
    if not any(st.own_schedule for st in cfg.stages):
        return cosine_lr(samples_seen, t.peak_lr, t.warmup_samples, t.samples_seen)
    spans = stage_spans(cfg)
    i = next((k for k, (_, end) in enumerate(spans) if samples_seen < end), len(spans) - 1)
    start, end = spans[i]
    st = cfg.stages[i]
    warmup = st.warmup_samples if st.warmup_samples is not None else cfg.train.warmup_samples
    return cosine_lr(samples_seen - start, cfg.stage_peak_lr(i), warmup, end - start)
