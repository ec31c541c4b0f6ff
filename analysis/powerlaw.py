"""Power laws of error against compute: the pure one (a line in log-log) and the saturating one."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

from analysis.checks import DegenerateInputError, enough_points, positive_finite, same_length, varies


@dataclass(frozen=True)
class PowerLaw:
    """E = beta * C^alpha."""

    beta: float
    alpha: float

    def __call__(self, compute):
        return self.beta * np.asarray(compute, dtype=float) ** self.alpha

    def formula(self, digits: int = 2) -> str:
        return f"E = {self.beta:.{digits}f} C^{self.alpha:.{digits}f}"


def fit_power_law(compute, error) -> PowerLaw:
    """Least squares of log E on log C (Cherti et al.'s fit); exact, no starting point."""
    c = positive_finite("compute", compute)
    e = positive_finite("error", error)
    n = same_length(compute=c, error=e)
    enough_points(n, 2, "power law")
    varies("compute", c)
    x, y = np.log(c), np.log(e)
    xm, ym = x.mean(), y.mean()
    alpha = float(((x - xm) * (y - ym)).sum() / ((x - xm) ** 2).sum())
    return PowerLaw(beta=float(np.exp(ym - alpha * xm)), alpha=alpha)


@dataclass(frozen=True)
class SaturatingPowerLaw:
    """E = a * (C + b)^c + d: a power law that bends towards the irreducible error d."""

    a: float
    b: float
    c: float
    d: float

    def __call__(self, compute):
        return self.a * (np.asarray(compute, dtype=float) + self.b) ** self.c + self.d

    def formula(self, digits: int = 3) -> str:
        return f"E = {self.a:.{digits}g} (C + {self.b:.{digits}g})^{self.c:.{digits}f} + {self.d:.{digits}g}"


# Starting exponents and floors (as a share of the smallest error) tried by the saturating fit;
# b starts at 0, the smallest compute and ten times it (in units of the smallest compute).
SATURATING_GRID = {
    "c": (-0.05, -0.1, -0.2, -0.5, -1.0),
    "d_share": (0.0, 0.3, 0.6, 0.9),
    "b_scale": (0.0, 1.0, 10.0),
}


def _grid_starts(grid, x, e):
    for c0, share, b0 in itertools.product(grid["c"], grid["d_share"], grid["b_scale"]):
        d0 = share * e.min()
        # the amplitude that makes the start pass through the data on average, in log space
        yield [float(np.mean(np.log(e - d0) - c0 * np.log(x + b0))), b0, c0, d0]


def _best_start(residuals, starts, lower, upper):
    best = None
    for p0 in starts:
        p0 = np.clip(p0, np.add(lower, 1e-12), np.subtract(upper, 1e-12))
        r = least_squares(residuals, p0, bounds=(lower, upper), method="trf", x_scale="jac", max_nfev=2000)
        if np.isfinite(r.cost) and (best is None or r.cost < best.cost - 1e-15):
            best = r
    return best


def fit_saturating_power_law(compute, error, grid: dict | None = None,
                             starts: list[SaturatingPowerLaw] | None = None, n_starts: int = 8) -> SaturatingPowerLaw:
    """Least squares on log E from the ``n_starts`` best-scoring starts of ``grid`` (or from the laws in
    ``starts``, e.g. the full-data fit when refitting bootstrap resamples); the lowest loss wins
    (ties: first start).

    Compute is rescaled by its minimum so the optimiser sees numbers near one; the result is mapped
    back to the caller's units.
    """
    cc = positive_finite("compute", compute)
    e = positive_finite("error", error)
    n = same_length(compute=cc, error=e)
    enough_points(n, 4, "saturating power law")
    varies("compute", cc, distinct=4)
    grid = grid or SATURATING_GRID
    scale = cc.min()
    x = cc / scale
    log_e = np.log(e)
    e_min = e.min()

    # parameters: log a', b' (offset in units of the smallest compute), c, d; the bounds keep the curve
    # decreasing, with a floor d below every observed error so the log stays defined
    def residuals(p):
        log_a, b, c, d = p
        return np.log(np.exp(log_a) * (x + b) ** c + d) - log_e

    lower = [-50.0, 0.0, -5.0, 0.0]
    upper = [50.0, 1e6, -1e-6, e_min * (1 - 1e-9)]
    with threadpool_limits(limits=1):  # tiny BLAS calls: threads only add contention
        if starts:
            # a law in caller units -> optimiser units: a' = a scale^c, b' = b / scale
            p0s = [[np.log(s.a) + s.c * np.log(scale), s.b / scale, s.c, min(s.d, 0.999 * e_min)] for s in starts]
        else:
            # score every grid start (one residual evaluation each) and optimise from the best few only
            p0s = list(_grid_starts(grid, x, e))
            cost = [float(np.sum(residuals(np.clip(p, lower, upper)) ** 2)) for p in p0s]
            p0s = [p0s[i] for i in np.argsort(cost, kind="stable")[:n_starts]]
        best = _best_start(residuals, p0s, lower, upper)
    if best is None:
        raise DegenerateInputError("saturating power law: no start converged")
    log_a, b, c, d = best.x
    # back to caller units: a'(x + b')^c = a'(C/scale + b')^c = a' scale^-c (C + b' scale)^c
    return SaturatingPowerLaw(a=float(np.exp(log_a) * scale ** (-c)), b=float(b * scale), c=float(c), d=float(d))
