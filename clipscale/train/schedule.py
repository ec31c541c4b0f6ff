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
