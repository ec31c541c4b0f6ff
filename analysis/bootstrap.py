"""Bootstrap confidence intervals and held-out extrapolation error for any fit."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from analysis.checks import DegenerateInputError


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def fit_parameters(fit) -> dict[str, float]:
    return {k: float(v) for k, v in dataclasses.asdict(fit).items()}


def bootstrap_fits(fit_fn: Callable, arrays: Sequence, n_resamples: int = 200, seed: int = 0) -> list:
    """Fits of ``fit_fn(*arrays)`` on ``n_resamples`` resamples of the rows (with replacement).

    Resamples the fit rejects as degenerate (e.g. every row from one compute) are skipped; if more than
    half are, the data is too thin for a bootstrap and that is raised instead.
    """
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    fits, failed = [], 0
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        try:
            fits.append(fit_fn(*(a[idx] for a in arrays)))
        except DegenerateInputError:
            failed += 1
    if failed * 2 > n_resamples:
        raise DegenerateInputError(f"bootstrap: {failed} of {n_resamples} resamples could not be fitted; "
                                   f"{n} points are too few for an interval")
    return fits


def bootstrap_intervals(fit_fn: Callable, arrays: Sequence, n_resamples: int = 200, level: float = 0.95,
                        seed: int = 0, estimate=None) -> dict[str, Interval]:
    """Percentile intervals of every parameter of the fit. Deterministic for a given ``seed``."""
    point = estimate if estimate is not None else fit_fn(*arrays)
    fits = bootstrap_fits(fit_fn, arrays, n_resamples, seed)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    out = {}
    for name, value in fit_parameters(point).items():
        samples = np.array([getattr(f, name) for f in fits], dtype=float)
        low, high = np.percentile(samples, q)
        out[name] = Interval(value, float(low), float(high))
    return out


def prediction_band(fits: Sequence, x, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile band of the fitted curves at ``x`` (for shaded bands in figures)."""
    curves = np.array([np.asarray(f(x), dtype=float) for f in fits])
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    low, high = np.percentile(curves, q, axis=0)
    return low, high


@dataclass(frozen=True)
class Extrapolation:
    held_out_compute: float
    observed: float
    predicted: float

    @property
    def relative_error(self) -> float:
        return abs(self.predicted - self.observed) / self.observed


def extrapolation_error(fit_fn: Callable, compute, error) -> Extrapolation:
    """Fit on every point but those at the largest compute, predict the largest; the honest test of a law.

    With several points at the largest compute, the best (lowest) error there is the target.
    """
    c = np.asarray(compute, dtype=float)
    e = np.asarray(error, dtype=float)
    top = c == c.max()
    if (~top).sum() == 0:
        raise DegenerateInputError("extrapolation: compute does not vary, nothing to hold out from")
    law = fit_fn(c[~top], e[~top])
    return Extrapolation(held_out_compute=float(c.max()), observed=float(e[top].min()),
                         predicted=float(law(c.max())))
