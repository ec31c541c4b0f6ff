"""Counts -> thresholds -> entry probabilities -> keep probability (docs/curation.md, steps 4-6).

Pure functions over numpy arrays of per-entry counts (``count_e``: captions of the language that
match entry e). Meta CLIP 2's ``t_to_p`` / ``p_to_t`` / ``count_to_prob``, as docs/curation.md states them.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from clipscale.errors import ClipscaleError


class ThresholdError(ClipscaleError, ValueError):
    """The pool cannot give thresholds (e.g. no English match to take the tail share from)."""


def tail_share(counts: np.ndarray, t: float) -> float:
    """Share of all matches that fall on entries counted below ``t``:
    sum(count_e < t) / sum(count_e), measured in matches."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total <= 0:
        raise ThresholdError("tail share of a language with no match is undefined")
    return float(counts[counts < t].sum()) / total


def threshold_for_tail_share(counts: np.ndarray, p: float) -> int:
    """t such that the cumulative share of the ascending counts is nearest ``p``.

    Only entries that matched take part: a zero count adds no match, and letting one be picked
    would give t = 0, which drops the whole language. On a tie the smaller count wins (the first
    nearest, as numpy's argmin in Meta CLIP 2's ``p_to_t``).
    """
    counts = np.asarray(counts, dtype=np.int64)
    counts = np.sort(counts[counts > 0])
    if counts.size == 0:
        raise ThresholdError("no entry of this language matched; no threshold can be derived")
    cumulative_share = np.cumsum(counts) / counts.sum()
    return int(counts[int(np.argmin(np.abs(cumulative_share - p)))])


def entry_probabilities(counts: np.ndarray, t_lang: float) -> np.ndarray:
    """p_e = t_lang / max(count_e, t_lang): 1 for tail entries, t_lang / count_e for head ones."""
    if t_lang <= 0:
        raise ThresholdError(f"t_lang must be positive, got {t_lang}")
    counts = np.asarray(counts, dtype=np.float64)
    return t_lang / np.maximum(counts, float(t_lang))


def keep_probability(matched_ids: Sequence[int], p_e: np.ndarray) -> float:
    """Noisy-OR: 1 - prod over matched entries of (1 - p_e); 0 for a caption with no match."""
    if len(matched_ids) == 0:
        return 0.0
    return float(1.0 - np.prod(1.0 - p_e[np.asarray(matched_ids, dtype=np.int64)]))


def language_thresholds(
    counts_by_lang: Mapping[str, np.ndarray],
    english: str = "en",
    t_en: int | None = None,
    target_tail_share: float | None = None,
) -> tuple[dict[str, int], float, int]:
    """Per-language thresholds from the English tail share.

    Exactly one of ``t_en`` (given, as Meta CLIP's 20k at 400M) or ``target_tail_share`` (t_en is
    then the English count whose cumulative share is nearest it) must be set. Returns
    (t_lang per language, the English tail share p measured at t_en, t_en).
    """
    if (t_en is None) == (target_tail_share is None):
        raise ThresholdError("give exactly one of t_en and target_tail_share")
    en_counts = counts_by_lang.get(english)
    if en_counts is None or int(np.asarray(en_counts).sum()) == 0:
        raise ThresholdError(
            f"the pool has no caption in '{english}' matching its metadata: thresholds come from the "
            "English tail share, so an English-less pool cannot be balanced")
    if t_en is None:
        t_en = threshold_for_tail_share(en_counts, float(target_tail_share))
    p = tail_share(en_counts, t_en)
    thresholds: dict[str, int] = {}
    for lang, counts in counts_by_lang.items():
        if lang == english:
            thresholds[lang] = int(t_en)
        elif int(np.asarray(counts).sum()) > 0:
            thresholds[lang] = threshold_for_tail_share(counts, p)
    return thresholds, p, int(t_en)
