"""Online curation consumed per epoch: which images of an online-mode curated shard
(``clipscale curate --mode online``) train in a given epoch, and on which caption.

The draw is a pure function of (run seed, epoch, sample key) through
``curation.sampling.online_choice``, so every worker agrees on it, and a run resumed mid-epoch
replays exactly the draw of the interrupted epoch. The keep probabilities are the ones the
curation wrote under the sample json's ``curation``; the curation's own seed is not used, so two
runs with different seeds see different epochs of the same curated pool.

``KeptShare`` counts, per epoch and language, how many images were offered (their picked
caption is in that language) and how many kept: the realised kept share a results row records.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from clipscale.curation.sampling import online_choice


def is_online_sample(meta: dict) -> bool:
    curation = meta.get("curation")
    return isinstance(curation, dict) and "keep_probs" in curation


def epoch_caption(key: str, text: str | None, meta: dict, run_seed: int,
                  epoch: int) -> tuple[int, str, str] | None:
    """(caption index, caption, language) this sample trains on in ``epoch``, or None when it
    sits the epoch out."""
    curation = meta["curation"]
    probs = curation["keep_probs"]
    chosen = online_choice(key, probs, run_seed, epoch)
    if chosen is None:
        return None
    extra = meta.get(curation.get("captions_field", "captions"))
    captions = [text] + ([c for c in extra if isinstance(c, str)] if isinstance(extra, list) else [])
    return chosen, captions[chosen], curation["languages"][chosen]


def offered_language(key: str, meta: dict, run_seed: int, epoch: int) -> str | None:
    """The language of the caption the epoch's pick lands on (kept or not): the denominator of
    that language's kept share. None for an image with no matched caption."""
    from clipscale.curation.sampling import pick_caption

    curation = meta["curation"]
    candidates = [i for i, p in enumerate(curation["keep_probs"]) if p > 0.0]
    chosen = pick_caption(candidates, run_seed, key, epoch)
    return None if chosen is None else curation["languages"][chosen]


@dataclass
class KeptShare:
    """Offered and kept images per (epoch, language)."""

    offered: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    kept: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, key: str, meta: dict, run_seed: int, epoch: int) -> tuple[int, str, str] | None:
        """Draw one sample for ``epoch`` and count it; returns ``epoch_caption``'s answer."""
        lang = offered_language(key, meta, run_seed, epoch)
        if lang is None:
            return None
        self.offered[epoch][lang] += 1
        drawn = epoch_caption(key, None, meta, run_seed, epoch)
        if drawn is not None:
            self.kept[epoch][drawn[2]] += 1
        return drawn

    def share(self, epoch: int) -> dict[str, float]:
        """Realised kept share per language in ``epoch`` (kept / offered)."""
        return {lang: self.kept[epoch][lang] / n for lang, n in sorted(self.offered[epoch].items())}

    def row_columns(self, epoch: int) -> dict[str, float]:
        """Results-row columns ``kept_share_<lang>`` for ``epoch``."""
        return {f"kept_share_{lang}": v for lang, v in self.share(epoch).items()}
