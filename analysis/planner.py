"""Compute-optimal frontier and budget planner: for a compute budget, which (model, token lengths,
samples seen) does the fitted data predict to reach the lowest error, and how sure is that?

Each configuration (model, image tokens, text tokens, training languages) gets its own power law of
error against compute from its runs at different samples seen; a budget C then means C / (training FLOPs per sample) samples
for that configuration, and the configurations compete on predicted error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.bootstrap import bootstrap_fits
from analysis.checks import DegenerateInputError, positive_finite
from analysis.load import finals
from analysis.powerlaw import PowerLaw, fit_power_law

CONFIG = ["model", "image_tokens", "text_tokens", "languages"]
MIN_SCALES = 3  # distinct samples_seen a configuration needs before its law is trusted to extrapolate


@dataclass(frozen=True)
class ConfigLaw:
    model: str
    image_tokens: int
    text_tokens: int
    languages: str
    params: float
    flops_per_sample: float
    law: PowerLaw
    resampled: tuple  # bootstrap refits of ``law``
    min_compute: float  # the compute range measured: outside it the plan extrapolates
    max_compute: float


def config_laws(frame: pd.DataFrame, metric: str = "zeroshot_top1_mean", n_resamples: int = 200,
                seed: int = 0) -> tuple[list[ConfigLaw], list[str]]:
    """A law per configuration with enough scales, and a line per configuration left out (and why)."""
    for col in CONFIG + [metric, "compute", "train_flops_per_sample", "params"]:
        if col not in frame.columns:
            raise DegenerateInputError(f"results have no column {col!r}")
    rows = finals(frame).dropna(subset=[metric])
    laws, skipped = [], []
    for key, g in rows.groupby(CONFIG, sort=True):
        name = f"{key[0]} img{key[1]} txt{key[2]} [{key[3]}]"
        if g["samples_seen"].nunique() < MIN_SCALES:
            skipped.append(f"{name}: {g['samples_seen'].nunique()} samples-seen value(s), need {MIN_SCALES}")
            continue
        compute = positive_finite(f"{name} compute", g["compute"])
        error = positive_finite(f"{name} error (1 - {metric})", 1.0 - g[metric].to_numpy(float))
        law = fit_power_law(compute, error)
        fits = bootstrap_fits(fit_power_law, (compute, error), n_resamples, seed)
        laws.append(ConfigLaw(str(key[0]), int(key[1]), int(key[2]), str(key[3]), float(g["params"].iloc[0]),
                              float(g["train_flops_per_sample"].median()), law, tuple(fits),
                              float(compute.min()), float(compute.max())))
    if not laws:
        raise DegenerateInputError("no configuration has runs at enough samples-seen values to fit a law: "
                                   + "; ".join(skipped))
    return laws, skipped


def plan(laws: list[ConfigLaw], budget: float, level: float = 0.95) -> dict:
    """The configuration predicted best at ``budget`` FLOPs, its samples seen, predicted error with a
    bootstrap interval, and ``agreement``: the share of bootstrap replicates that pick the same one."""
    if not np.isfinite(budget) or budget <= 0:
        raise DegenerateInputError(f"budget must be a positive number of FLOPs, got {budget!r}")
    predicted = np.array([cl.law(budget) for cl in laws])
    best = int(np.argmin(predicted))
    n_rep = min(len(cl.resampled) for cl in laws)
    rep = np.array([[cl.resampled[r](budget) for cl in laws] for r in range(n_rep)])
    winners = rep.argmin(axis=1)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    low, high = np.percentile(rep[:, best], q)
    cl = laws[best]
    return {"budget": float(budget), "model": cl.model, "params": cl.params, "image_tokens": cl.image_tokens,
            "text_tokens": cl.text_tokens, "languages": cl.languages, "samples_seen": float(budget / cl.flops_per_sample),
            "predicted_error": float(predicted[best]), "error_low": float(low), "error_high": float(high),
            "agreement": float(np.mean(winners == best)), "extrapolated": bool(not cl.min_compute <= budget <= cl.max_compute)}


def compute_optimal_frontier(laws: list[ConfigLaw], budgets) -> pd.DataFrame:
    """``plan`` at each budget, one row per budget."""
    budgets = positive_finite("budgets", budgets)
    return pd.DataFrame([plan(laws, b) for b in np.sort(budgets)])
