"""The three effects the report states, each with a 95% interval and a verdict.

(a) inverse scaling (CLIPA): larger models lose less accuracy when image tokens shrink;
(b) the curse of multilinguality (Meta CLIP 2): worldwide training's gap on English shrinks with capacity;
(c) a power law of error against compute over the frontier, with an exponent that is not zero.

Intervals are a parametric bootstrap from the binomial counts: each run's accuracy ``p`` on ``n`` eval items
is redrawn as Binomial(n, p) / n, and where a cell has several runs (seeds) the runs are resampled first, so
seed-to-seed spread enters too. A bootstrap over eval items would need per-item scores the results table
does not keep; the binomial redraw is what those items' resampling gives for a share. Every effect is
computed only from models whose accuracy is significantly above chance: a model at chance has nothing to
lose to shorter tokens or to a language mix, and would make a difference of noise. An interval that holds
zero is reported as "not resolved at this scale". See docs/statistics.md.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from analysis.checks import DegenerateInputError
from analysis.inverse_scaling import token_length_runs
from analysis.load import finals
from analysis.multilinguality import training_mix
from analysis.powerlaw import fit_power_law
from analysis.stats import (LEVEL, above_chance, chance_level, difference_interval, eval_size, excludes_zero,
                            fmt_interval, language_metric, wilson_bounds)

RESOLVED, NOT_RESOLVED = "resolved", "not resolved at this scale"
METHOD = ("parametric bootstrap from the binomial counts (each run's accuracy redrawn as Binomial(n, p)/n; "
          "runs of a cell resampled first when there are several seeds)")


@dataclass(frozen=True)
class Effect:
    name: str
    question: str
    estimate: float | None
    low: float | None
    high: float | None
    verdict: str
    statement: str                      # the one line the report and the demo print
    method: str
    chance: dict[str, float] = field(default_factory=dict)
    details: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def unresolved(name: str, question: str, reason: str, chance: dict | None = None,
               details: list | None = None) -> Effect:
    return Effect(name, question, None, None, None, NOT_RESOLVED, f"{NOT_RESOLVED}: {reason}", METHOD,
                  chance or {}, details or [])


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    low, high = np.percentile(replicates, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(low), float(high)


def cell_replicates(acc: np.ndarray, n: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """[n_resamples] redraws of the mean accuracy of one cell's runs (see the module docstring)."""
    acc, n = np.clip(np.asarray(acc, float), 0, 1), np.asarray(n, float).round().astype(np.int64)
    idx = rng.integers(0, len(acc), size=(n_resamples, len(acc))) if len(acc) > 1 else \
        np.zeros((n_resamples, 1), dtype=np.int64)
    return (rng.binomial(n[idx], acc[idx]) / n[idx]).mean(axis=1)


def with_counts(frame: pd.DataFrame, metric: str) -> tuple[pd.DataFrame | None, str | None]:
    """``frame`` with columns ``acc``, ``n`` and ``chance`` for ``metric``, or (None, why not)."""
    if metric not in frame.columns:
        return None, f"the results have no column {metric!r}"
    n, chance = eval_size(frame, metric), chance_level(frame, metric)
    if n is None:
        return None, (f"the results table records no eval-set size for {metric} (tables written before the "
                      "zeroshot_n_<lang> / retrieval_n_<lang> columns existed); no interval can be given")
    if chance is None:
        return None, f"the results table records no class count for {metric}; its chance level is unknown"
    out = frame.assign(acc=frame[metric].astype(float), n=n, chance=chance).dropna(subset=["acc", "n", "chance"])
    if out.empty:
        return None, f"no run has {metric} with its eval-set size"
    return out, None


def chance_of(rows: pd.DataFrame, metric: str) -> dict[str, float]:
    return {metric: float(rows["chance"].max())}


def _model_order(rows: pd.DataFrame) -> list[str]:
    return list(rows.sort_values(["params", "model"], kind="stable")["model"].drop_duplicates())


def token_runs_every_mix(frame: pd.DataFrame, axis: str, metric: str) -> pd.DataFrame:
    """``token_length_runs`` for every training-language mix, stacked: each mix compares like with like, and
    averaging a model's drop over its mixes uses every run the sweep has."""
    if metric not in frame.columns:
        raise DegenerateInputError(f"results have no column {metric!r}")
    parts = []
    for languages in sorted(finals(frame).dropna(subset=[metric])["languages"].unique()):
        try:
            parts.append(token_length_runs(frame, axis, metric, languages))
        except DegenerateInputError:
            continue
    if not parts:
        raise DegenerateInputError(f"no training mix has final evaluations with {metric}")
    return pd.concat(parts, ignore_index=True)


def inverse_scaling_effect(frame: pd.DataFrame, metric: str = "zeroshot_top1_mean", axis: str = "image_tokens",
                           n_resamples: int = 1000, seed: int = 0) -> Effect:
    """Accuracy lost from each model's full to its shortest ``axis`` length (within each training mix, then
    averaged over the mixes); estimate = the smallest model's loss minus the largest's (positive: larger
    models lose less, CLIPA's direction), over the models whose full-length accuracy is significantly above
    chance."""
    name, question = "inverse_scaling", f"do larger models lose less {metric} when {axis} shrink?"
    try:
        runs = token_runs_every_mix(frame, axis, metric)
    except DegenerateInputError as err:
        return unresolved(name, question, str(err))
    rows, why = with_counts(runs, metric)
    if rows is None:
        return unresolved(name, question, why)
    chance = chance_of(rows, metric)
    rng = np.random.default_rng(seed)
    details, reps = [], {}
    for model in _model_order(rows):
        g = rows[rows["model"] == model]
        fulls, shorts, mix_reps, lengths = [], [], [], None
        for _, m in g.groupby("languages", sort=True):
            full_len, short_len = m[axis].max(), m[axis].min()
            if full_len == short_len:
                continue
            full, short = m[m[axis] == full_len], m[m[axis] == short_len]
            fulls.append(full)
            shorts.append(short)
            lengths = lengths or (int(full_len), int(short_len))
            mix_reps.append(cell_replicates(full["acc"], full["n"], rng, n_resamples)
                            - cell_replicates(short["acc"], short["n"], rng, n_resamples))
        if not fulls:
            continue
        fa, sa = np.mean([f["acc"].mean() for f in fulls]), np.mean([s["acc"].mean() for s in shorts])
        fn, sn = sum(f["n"].sum() for f in fulls), sum(s["n"].sum() for s in shorts)
        lo, hi = difference_interval(fa, fn, sa, sn)
        ok = above_chance(fa, fn, float(g["chance"].max()))
        details.append({"model": model, "params": int(g["params"].iloc[0]), "full_tokens": lengths[0],
                        "short_tokens": lengths[1], "mixes": len(fulls), "full_accuracy": float(fa),
                        "short_accuracy": float(sa), "drop": float(fa - sa), "drop_low": lo, "drop_high": hi,
                        "drop_significant": excludes_zero(lo, hi), "full_above_chance": ok})
        if ok:
            reps[model] = np.mean(mix_reps, axis=0)
    if len(details) < 2:
        return unresolved(name, question, f"fewer than 2 model sizes vary {axis}", chance, details)
    if len(reps) < 2:
        return unresolved(name, question, f"{len(reps)} of {len(details)} model sizes have a full-length accuracy "
                          "significantly above chance; need 2", chance, details)
    used = [d for d in details if d["model"] in reps]
    small, large = used[0], used[-1]
    estimate = small["drop"] - large["drop"]
    low, high = percentile_interval(reps[small["model"]] - reps[large["model"]])
    where = (f"{small['model']} loses {small['drop']:+.3f}, {large['model']} {large['drop']:+.3f} "
             f"from {small['full_tokens']}->{small['short_tokens']} / {large['full_tokens']}->"
             f"{large['short_tokens']} {axis}; difference {estimate:+.3f} {fmt_interval(low, high)}")
    if not excludes_zero(low, high):
        return Effect(name, question, estimate, low, high, NOT_RESOLVED, f"{NOT_RESOLVED}: {where}", METHOD,
                      chance, details)
    direction = ("larger models lose less accuracy when image tokens shrink (CLIPA's direction)" if estimate > 0
                 else "larger models lose MORE accuracy when tokens shrink (opposite to CLIPA)")
    return Effect(name, question, estimate, low, high, RESOLVED, f"{direction}: {where}", METHOD, chance, details)


def english_gap_effect(frame: pd.DataFrame, metric: str = "zeroshot_top1_mean", n_resamples: int = 1000,
                       seed: int = 0) -> Effect:
    """Per model, English accuracy of worldwide minus English-only training (paired at the same token lengths,
    at the model's largest samples seen); estimate = the largest model's gap minus the smallest's (positive:
    the worldwide mix's English deficit shrinks with capacity, Meta CLIP 2's direction)."""
    english = language_metric(metric, "en") if not metric.endswith("_en") else metric
    name, question = "english_gap", f"does the worldwide vs English-only gap on {english} shrink with model size?"
    for col in ("languages", "english_share", "params", "samples_seen", "image_tokens", "text_tokens"):
        if col not in frame.columns:
            return unresolved(name, question, f"the results have no column {col!r}")
    try:
        rows = finals(frame)
    except DegenerateInputError as err:
        return unresolved(name, question, str(err))
    rows, why = with_counts(rows, english)
    if rows is None:
        return unresolved(name, question, why)
    chance = chance_of(rows, english)
    rows = rows.assign(mix=[training_mix(l, s) for l, s in zip(rows["languages"], rows["english_share"])])
    rows = rows[rows["samples_seen"] == rows.groupby("model")["samples_seen"].transform("max")]
    rng = np.random.default_rng(seed)
    details, reps = [], {}
    for model in _model_order(rows):
        g = rows[rows["model"] == model]
        cells = [(key, c) for key, c in g.groupby(["image_tokens", "text_tokens"]) if c["mix"].nunique() == 2]
        if not cells:
            continue
        gaps, gap_reps, ww_n, en_n = [], [], 0.0, 0.0
        for _, c in cells:
            ww, en = c[c["mix"] == "worldwide"], c[c["mix"] == "english-only"]
            gaps.append(ww["acc"].mean() - en["acc"].mean())
            gap_reps.append(cell_replicates(ww["acc"], ww["n"], rng, n_resamples)
                            - cell_replicates(en["acc"], en["n"], rng, n_resamples))
            ww_n, en_n = ww_n + ww["n"].sum(), en_n + en["n"].sum()
        ww_acc = float(np.mean([c[c["mix"] == "worldwide"]["acc"].mean() for _, c in cells]))
        en_acc = float(np.mean([c[c["mix"] == "english-only"]["acc"].mean() for _, c in cells]))
        # judged on each mix's pooled runs (one test per mix, not one per run: many tests would find
        # some run "above chance" by luck)
        ch = float(g["chance"].max())
        best = above_chance(ww_acc, ww_n, ch) or above_chance(en_acc, en_n, ch)
        lo, hi = difference_interval(ww_acc, ww_n, en_acc, en_n)
        details.append({"model": model, "params": int(g["params"].iloc[0]), "configs": len(cells),
                        "english_worldwide": ww_acc, "english_only": en_acc, "gap": float(np.mean(gaps)),
                        "gap_low": lo, "gap_high": hi, "gap_significant": excludes_zero(lo, hi),
                        "above_chance": best})
        if best:
            reps[model] = np.mean(gap_reps, axis=0)
    if len(details) < 2:
        return unresolved(name, question, "fewer than 2 model sizes have both worldwide and English-only runs",
                          chance, details)
    if len(reps) < 2:
        return unresolved(name, question, f"{len(reps)} of {len(details)} model sizes are significantly above "
                          "chance on English; need 2", chance, details)
    used = [d for d in details if d["model"] in reps]
    small, large = used[0], used[-1]
    estimate = large["gap"] - small["gap"]
    low, high = percentile_interval(reps[large["model"]] - reps[small["model"]])
    where = (f"English gap (worldwide - English-only) {small['model']} {small['gap']:+.3f}, "
             f"{large['model']} {large['gap']:+.3f}; change {estimate:+.3f} {fmt_interval(low, high)}")
    if not excludes_zero(low, high):
        return Effect(name, question, estimate, low, high, NOT_RESOLVED, f"{NOT_RESOLVED}: {where}", METHOD,
                      chance, details)
    direction = ("the worldwide mix's English gap shrinks with capacity (Meta CLIP 2's direction)" if estimate > 0
                 else "the worldwide mix's English gap GROWS with capacity (opposite to Meta CLIP 2)")
    return Effect(name, question, estimate, low, high, RESOLVED, f"{direction}: {where}", METHOD, chance, details)


def significant_frontier(compute, acc, n) -> np.ndarray:
    """Indices of the frontier of (compute, error = 1 - acc) whose every step is significant: by increasing
    compute, a run joins only when its accuracy is significantly above the frontier's best so far (the
    difference interval excludes zero). A running minimum alone always falls, even on pure noise."""
    compute, acc, n = (np.asarray(a, float) for a in (compute, acc, n))
    low, high = wilson_bounds(acc, n)
    order = np.lexsort((-acc, compute))
    keep = [order[0]]
    for i in order[1:]:
        b = keep[-1]
        # Newcombe's lower bound of acc[i] - acc[b] (stats.difference_interval), on precomputed Wilson bounds
        if compute[i] > compute[b] and \
                acc[i] - acc[b] - np.sqrt((acc[i] - low[i]) ** 2 + (high[b] - acc[b]) ** 2) > 0:
            keep.append(i)
    return np.asarray(keep)


def frontier_exponent(compute, acc, n) -> tuple[float, np.ndarray]:
    """The power-law exponent over the significant frontier, 0 when it has a single point (no significant
    improvement with compute)."""
    idx = significant_frontier(compute, acc, n)
    if len(idx) < 2:
        return 0.0, idx
    return fit_power_law(np.asarray(compute, float)[idx], 1.0 - np.asarray(acc, float)[idx]).alpha, idx


def power_law_effect(frame: pd.DataFrame, metric: str = "zeroshot_top1_mean", n_resamples: int = 1000,
                     seed: int = 0, min_points: int = 3) -> Effect:
    """E = beta C^alpha over the significant frontier; estimate = alpha. Resolved when its interval excludes
    zero and the frontier has at least ``min_points`` points (a law, not a line through two)."""
    name, question = "power_law", f"does error (1 - {metric}) fall as a power law of compute over the frontier?"
    if "compute" not in frame.columns:
        return unresolved(name, question, "the results have no column 'compute'")
    try:
        rows = finals(frame)
    except DegenerateInputError as err:
        return unresolved(name, question, str(err))
    rows, why = with_counts(rows, metric)
    if rows is None:
        return unresolved(name, question, why)
    rows = rows[(rows["compute"] > 0) & (rows["acc"] < 1)]
    chance = chance_of(rows, metric)
    c, a, n = rows["compute"].to_numpy(float), rows["acc"].to_numpy(float), rows["n"].to_numpy(float)
    if np.unique(c).size < 2:
        return unresolved(name, question, "compute does not vary", chance)
    alpha, idx = frontier_exponent(c, a, n)
    details = [{"model": str(rows["model"].iloc[i]), "compute": float(c[i]), "error": float(1 - a[i]),
                "n": float(n[i])} for i in idx]
    rng = np.random.default_rng(seed)
    ni = n.round().astype(np.int64)
    reps = np.array([frontier_exponent(c, rng.binomial(ni, np.clip(a, 0, 1)) / ni, n)[0]
                     for _ in range(n_resamples)])
    low, high = percentile_interval(reps)
    beta = fit_power_law(c[idx], 1 - a[idx]).beta if len(idx) >= 2 else float(np.mean(1 - a))
    where = (f"E = {beta:.3g} C^{alpha:.3f}, exponent {fmt_interval(low, high)} over {len(idx)} significant "
             f"frontier point(s) of {len(rows)} runs")
    if not excludes_zero(low, high) or len(idx) < min_points:
        extra = f" (fewer than {min_points} frontier points)" if excludes_zero(low, high) else ""
        return Effect(name, question, alpha, low, high, NOT_RESOLVED, f"{NOT_RESOLVED}: {where}{extra}", METHOD,
                      chance, details)
    direction = "error falls as a power law of compute" if alpha < 0 else "error RISES with compute"
    return Effect(name, question, alpha, low, high, RESOLVED, f"{direction}: {where}", METHOD, chance, details)


def all_effects(frame: pd.DataFrame, metric: str = "zeroshot_top1_mean", n_resamples: int = 1000,
                seed: int = 0) -> list[Effect]:
    return [inverse_scaling_effect(frame, metric, n_resamples=n_resamples, seed=seed),
            english_gap_effect(frame, metric, n_resamples=n_resamples, seed=seed),
            power_law_effect(frame, metric, n_resamples=n_resamples, seed=seed)]


def summary(effects: list[Effect], metric: str) -> dict:
    """The machine-readable summary (summary.json): each effect with estimate, interval, verdict, chance."""
    chance: dict[str, float] = {}
    for e in effects:
        chance.update(e.chance)
    return {"metric": metric, "level": LEVEL, "method": METHOD, "chance": chance,
            "effects": {e.name: e.to_json() for e in effects}}
