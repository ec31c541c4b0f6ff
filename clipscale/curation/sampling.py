"""Seeded draws for curation: which caption of an image, and whether it is kept.

Every draw is a hash of (seed, stream, epoch, sample key), not a stateful RNG, so the outcome of a
sample does not depend on which worker saw it or in what order: 1 worker and 8 give the same set.
Offline curation draws once (epoch 0); online curation calls ``online_choice`` every epoch.
"""
from __future__ import annotations

import hashlib
import struct
from typing import Sequence

_TWO_53 = float(1 << 53)


def uniform(seed: int, stream: str, key: str, epoch: int = 0) -> float:
    """A uniform float in [0, 1) fixed by its arguments (53 bits of blake2b)."""
    digest = hashlib.blake2b(f"{seed}\x1f{stream}\x1f{epoch}\x1f{key}".encode("utf-8"),
                             digest_size=8).digest()
    return (struct.unpack("<Q", digest)[0] >> 11) / _TWO_53


def pick_caption(candidates: Sequence[int], seed: int, key: str, epoch: int = 0) -> int | None:
    """One caption of an image, uniformly among ``candidates`` (the indices of its matched
    captions); None when there is none."""
    if not candidates:
        return None
    u = uniform(seed, "pick", key, epoch)
    return candidates[min(int(u * len(candidates)), len(candidates) - 1)]


def draw_keep(keep_prob: float, seed: int, key: str, epoch: int = 0) -> bool:
    return uniform(seed, "keep", key, epoch) < keep_prob


def online_choice(key: str, keep_probs: Sequence[float], seed: int, epoch: int) -> int | None:
    """The online-mode draw the training pipeline calls each epoch for one image.

    ``keep_probs[i]`` is the keep probability of the image's caption i (0 for a caption with no
    match), as written by ``clipscale curate`` in online mode. Returns the index of the caption to
    train on this epoch, or None when the image is dropped this epoch.
    """
    candidates = [i for i, p in enumerate(keep_probs) if p > 0.0]
    chosen = pick_caption(candidates, seed, key, epoch)
    if chosen is None or not draw_keep(keep_probs[chosen], seed, key, epoch):
        return None
    return chosen


def online_caption(key: str, text: str | None, meta: dict, epoch: int) -> tuple[str, str] | None:
    """For a sample of an online-mode curated shard: (caption, language) to train on in this
    epoch, or None when the sample sits this epoch out. Uses the seed and keep probabilities that
    ``clipscale curate`` wrote under ``meta["curation"]``."""
    curation = meta["curation"]
    chosen = online_choice(key, curation["keep_probs"], int(curation["seed"]), epoch)
    if chosen is None:
        return None
    extra = meta.get(curation.get("captions_field", "captions"))
    captions = [text] + ([c for c in extra if isinstance(c, str)] if isinstance(extra, list) else [])
    return captions[chosen], curation["languages"][chosen]
