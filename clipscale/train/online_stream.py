"""Online curation in the training stream (README "Online curation in training").

Ray Data's read tasks do not know the training epoch, so the epoch goes into the dataset itself:
on online-mode curated shards (``clipscale curate --mode online``) the stream is the pool
``online_epochs`` times over, each pass one curation epoch, and each read task gets its
(shard, epoch). ``EpochDraw`` then draws, inside the decode UDF, which images of the shard train
in that epoch and on which caption: ``online_curation.epoch_caption``, a pure function of the run
seed, the epoch and the key. The kept rows are decoded and split equally among the workers like
any rows, so the workers stay in lock-step, and the run's data position (one pass, batches
consumed) resumes exactly as for offline data: the draw is replayed, not stored.

Kept shares. Each read task reports, per (epoch, shard), how many images were offered (their
picked caption's language) and kept to the run's counters (train/counters.py), set rather than
added, so a shard decoded again after a restart is not counted twice. Rows carry ``kept_share_<lang>``
over every shard of the curation epoch in training decoded so far, and ``curation_epoch``.

``online_epochs``: ``data.online_epochs``, else estimated from the first shard (its size and its
mean keep probability) with a margin of 1.5x plus one epoch. A run that still needs more rows
stops with an error naming ``data.online_epochs`` rather than repeat a pass's draws.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterator

from clipscale.errors import ClipscaleError
from clipscale.train.counters import kept_share, set_curation
from clipscale.train.online_curation import epoch_caption, is_online_sample, offered_language


class OnlineCurationError(ClipscaleError, RuntimeError):
    """The online stream ran out of curation epochs."""


class EpochDraw:
    """One read task's draw over one shard for one curation epoch, counting as it goes."""

    def __init__(self, seed: int, epoch: int):
        self.seed, self.epoch = seed, epoch
        self.offered: Counter = Counter()
        self.kept: Counter = Counter()

    def caption(self, key: str, text: str, meta: dict) -> tuple[str, str] | None:
        """(caption, language) the image trains on this epoch, or None when it sits it out."""
        lang = offered_language(key, meta, self.seed, self.epoch)
        if lang is None:
            return None
        self.offered[lang] += 1
        drawn = epoch_caption(key, text, meta, self.seed, self.epoch)
        if drawn is None:
            return None
        self.kept[drawn[2]] += 1
        return drawn[1], drawn[2]

    def report(self, counter_name: str | None, shard: str) -> None:
        if counter_name:
            set_curation(counter_name, self.epoch, shard, dict(self.offered), dict(self.kept))


def expected_kept(meta: dict) -> float:
    """Probability that an online-mode sample trains in a given epoch (pick, then keep)."""
    probs = [p for p in meta["curation"]["keep_probs"] if p > 0.0]
    return sum(probs) / len(probs) if probs else 0.0


def online_epochs(shards: list[str], cfg) -> int | None:
    """Curation epochs a run on ``shards`` draws: None for offline data (the first sample is not
    online-mode: `clipscale curate` writes a pool in one mode), ``data.online_epochs`` when set,
    else enough for ``train.samples_seen`` with a 1.5x margin, from the first shard's kept rate."""
    from clipscale.data.shards import iter_shard

    first = list(iter_shard(shards[0]))
    if not first or not is_online_sample(first[0].meta):
        return None
    if cfg.data.online_epochs:
        return cfg.data.online_epochs
    kept = sum(expected_kept(s.meta) for s in first if is_online_sample(s.meta))
    per_epoch = max(kept * len(shards), 1.0)
    return math.ceil(1.5 * cfg.train.samples_seen / per_epoch) + 1


class OnlineProgress:
    """Worker side: the curation epoch of the batch in training, and the end of the stream."""

    def __init__(self, epochs: int | None):
        self.epochs, self.epoch = epochs, 0

    def track(self, source: Iterator[dict], state) -> Iterator[dict]:
        for raw in source:
            if state.epoch > 0:  # stage_batches began a second pass: it would repeat the draws
                raise OnlineCurationError(
                    f"the online-curation stream's {self.epochs} curation epochs are used up; "
                    "set data.online_epochs higher")
            self.epoch = int(raw["curation_epoch"][-1])
            yield raw


class WithKeptShare:
    """An evaluator whose metrics also carry the realised kept share per language of the curation
    epoch in training (``kept_share_<lang>``, ``curation_epoch``): the results row's columns."""

    def __init__(self, evaluator, progress: OnlineProgress, counter_name: str):
        self.evaluator, self.progress, self.counter_name = evaluator, progress, counter_name

    def run(self, engine) -> dict:
        epoch = self.progress.epoch
        shares = kept_share(self.counter_name, epoch)
        return {**self.evaluator.run(engine), **{f"kept_share_{k}": v for k, v in shares.items()},
                "curation_epoch": epoch}
