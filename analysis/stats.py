"""Binomial statistics of accuracies: intervals from the eval-set size, chance levels, significance.

An accuracy measured on n items is a binomial share; its 95% interval comes from n alone (Wilson's score
interval, or the exact Clopper-Pearson one). A difference between two accuracies is significant only when
its interval (Newcombe's hybrid score interval, built from the two Wilson intervals) excludes zero.

Where the sizes and class counts live in a results table (``eval_size``, ``chance_level``):

- built-in sets: ``zeroshot_top1_<lang>`` scored on ``zeroshot_n_<lang>`` images over ``zeroshot_classes``
  classes; ``i2t_r<k>_<lang>`` / ``t2i_r<k>_<lang>`` on ``retrieval_n_<lang>`` pairs;
- evaluation suites: ``<suite>/<metric>_<lang>`` on ``<suite>/n_<lang>`` items over ``<suite>/classes``.

A ``_mean`` / ``_non_en`` metric averages languages scored on the same images, so its items are not
independent across languages: it gets the smallest per-language size, the conservative choice (the
interval of one language, not of their pooled count). See docs/statistics.md.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy.stats import beta

LEVEL = 0.95
AGGREGATES = ("mean", "non_en")
_RETRIEVAL = re.compile(r"^(i2t|t2i)_r(\d+)_(.+)$")
_ZEROSHOT = re.compile(r"^zeroshot_top1_(.+)$")
_SUITE_TOPK = re.compile(r"top(\d+)")
_SUITE_RECALL = re.compile(r"r(?:ecall)?@?(\d+)")


def z_value(level: float = LEVEL) -> float:
    return NormalDist().inv_cdf((1 + level) / 2)


def wilson_interval(successes: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval for a binomial share ``successes / n`` (``successes`` may be fractional:
    an accuracy times its size)."""
    if not n > 0:
        raise ValueError(f"binomial interval needs n > 0, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside [0, {n}]")
    z = z_value(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_interval(successes: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """The exact (conservative) Clopper-Pearson interval, from the beta quantiles."""
    if not n > 0:
        raise ValueError(f"binomial interval needs n > 0, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside [0, {n}]")
    a = 1 - level
    low = 0.0 if successes == 0 else float(beta.ppf(a / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - a / 2, successes + 1, n - successes))
    return low, high


def accuracy_interval(accuracy: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson interval of an accuracy measured on ``n`` items."""
    return wilson_interval(float(np.clip(accuracy, 0.0, 1.0)) * n, n, level)


def wilson_bounds(accuracy, n, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """``accuracy_interval`` over arrays (the same formula, vectorised)."""
    p, n = np.clip(np.asarray(accuracy, float), 0.0, 1.0), np.asarray(n, float)
    z2 = z_value(level) ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = np.sqrt(z2) / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)


def difference_interval(acc_1: float, n_1: float, acc_2: float, n_2: float,
                        level: float = LEVEL) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``acc_1 - acc_2`` (two independent binomial shares)."""
    l1, u1 = accuracy_interval(acc_1, n_1, level)
    l2, u2 = accuracy_interval(acc_2, n_2, level)
    d = acc_1 - acc_2
    return (d - math.sqrt((acc_1 - l1) ** 2 + (u2 - acc_2) ** 2),
            d + math.sqrt((u1 - acc_1) ** 2 + (acc_2 - l2) ** 2))


def excludes_zero(low: float, high: float) -> bool:
    return bool(low > 0 or high < 0)


def above_chance(accuracy: float, n: float, chance: float, level: float = LEVEL) -> bool:
    """True when the accuracy's interval lies wholly above the chance level."""
    return accuracy_interval(accuracy, n, level)[0] > chance


@dataclass(frozen=True)
class MetricColumns:
    """Where a metric's eval-set size and chance level come from in a results table."""

    size: list[str]          # count columns; the smallest is the size
    classes: str | None      # number-of-classes column (classification), else None
    k: int | None            # the k of top-k / recall@k
    retrieval: bool


def metric_columns(metric: str, columns) -> MetricColumns | None:
    """Resolve ``metric``'s size and class-count columns under both naming conventions; None when the
    metric's name follows neither."""
    columns = list(columns)
    if "/" in metric:
        suite, name = metric.split("/", 1)
        base, _, lang = name.rpartition("_")
        if not base:
            return None
        sizes = ([c for c in columns if c.startswith(f"{suite}/n_") and c[len(suite) + 3:] not in AGGREGATES]
                 if lang in AGGREGATES else [f"{suite}/n_{lang}"])
        top = _SUITE_TOPK.search(base)
        recall = _SUITE_RECALL.search(base) if "i2t" in base or "t2i" in base or "recall@" in base else None
        if recall and "per_class" not in base:
            return MetricColumns(sizes, None, int(recall.group(1)), True)
        return MetricColumns(sizes, f"{suite}/classes", int(top.group(1)) if top else 1, False)
    m = _RETRIEVAL.match(metric)
    if m:
        return MetricColumns([f"retrieval_n_{m.group(3)}"], None, int(m.group(2)), True)
    m = _ZEROSHOT.match(metric)
    if m:
        lang = m.group(1)
        sizes = ([c for c in columns if c.startswith("zeroshot_n_") and c[len("zeroshot_n_"):] not in AGGREGATES]
                 if lang in AGGREGATES else [f"zeroshot_n_{lang}"])
        return MetricColumns(sizes, "zeroshot_classes", 1, False)
    return None


def eval_size(frame: pd.DataFrame, metric: str) -> pd.Series | None:
    """Items scored for ``metric`` per row (the smallest per-language size for a language mean), or
    None when the table does not record it (tables written before the counts existed)."""
    cols = metric_columns(metric, frame.columns)
    if cols is None or not cols.size or any(c not in frame.columns for c in cols.size):
        return None
    n = frame[cols.size].astype(float).min(axis=1)
    return None if n.isna().all() else n


def chance_level(frame: pd.DataFrame, metric: str) -> pd.Series | None:
    """What a random guess scores on ``metric`` per row: k/C for top-k over C classes, min(k, N)/N for
    recall@k over a pool of N (one true match per query); None when the table cannot tell."""
    cols = metric_columns(metric, frame.columns)
    if cols is None:
        return None
    if cols.retrieval:
        n = eval_size(frame, metric)
        return None if n is None else np.minimum(cols.k, n) / n
    if cols.classes not in frame.columns:
        return None
    classes = frame[cols.classes].astype(float)
    return np.minimum(cols.k, classes) / classes


def language_metric(metric: str, lang: str) -> str:
    """The per-language column of a language-mean metric: ``zeroshot_top1_mean`` -> ``zeroshot_top1_en``."""
    for agg in AGGREGATES:
        if metric.endswith(f"_{agg}"):
            return f"{metric[:-len(agg) - 1]}_{lang}"
    base, _, _ = metric.rpartition("_")
    if not base:
        raise ValueError(f"{metric!r} has no language suffix")
    return f"{base}_{lang}"


def fmt_interval(low: float, high: float, digits: int = 3) -> str:
    return f"[{low:.{digits}f}, {high:.{digits}f}]"
