"""The Chinchilla parametric surface L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al., approach 3).

Fitted as Besiroglu et al. (Epoch, "Chinchilla Scaling: A replication attempt") do: Huber loss
(delta = 1e-3) on log L - LSE(a - alpha log N, b - beta log D, e), with A = e^a, B = e^b, E = e^e,
minimised by L-BFGS-B from a grid of starting points.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from analysis.checks import DegenerateInputError, enough_points, positive_finite, same_length, varies

# Hoffmann et al.'s initialisation grid, as used by the Epoch replication: 6 x 6 x 5 x 5 x 5 = 4500 starts
# over (a, b, e, alpha, beta).
HOFFMANN_GRID = np.array(list(itertools.product(
    np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5),
    np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5))), dtype=float)

HUBER_DELTA = 1e-3
# Tighter than scipy's defaults: the Huber loss is nearly L1 at delta 1e-3, and with the default ftol a
# start near the optimum (a bootstrap warm start) stops at once, which shrank bootstrap intervals ~100x.
LBFGSB_OPTIONS = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000}


@dataclass(frozen=True)
class ChinchillaLaw:
    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __call__(self, n_params, n_samples):
        n = np.asarray(n_params, dtype=float)
        d = np.asarray(n_samples, dtype=float)
        return self.E + self.A / n ** self.alpha + self.B / d ** self.beta

    def formula(self) -> str:
        return (f"L(N, D) = {self.E:.3g} + {self.A:.4g} / N^{self.alpha:.3f} + "
                f"{self.B:.4g} / D^{self.beta:.3f}")

    def compute_optimal(self, compute, flops_per_param_sample: float = 6.0):
        """(N_opt, D_opt) minimising L at C = k N D (k = 6 for transformer training):
        N_opt = G (C/k)^(beta/(alpha+beta)), G = (alpha A / (beta B))^(1/(alpha+beta))."""
        c = np.asarray(compute, dtype=float) / flops_per_param_sample
        s = self.alpha + self.beta
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / s)
        n_opt = g * c ** (self.beta / s)
        return n_opt, c / n_opt


def _huber_objective(p, log_n, log_d, log_l, delta):
    """Sum of Huber losses of the log residuals, and its gradient in (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = p
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    top = terms.max(axis=0)
    w = np.exp(terms - top)
    total = w.sum(axis=0)
    w /= total  # softmax weights: d LSE / d term
    r = top + np.log(total) - log_l
    abs_r = np.abs(r)
    loss = np.where(abs_r <= delta, 0.5 * r * r, delta * (abs_r - 0.5 * delta)).sum()
    g = np.clip(r, -delta, delta)
    grad = np.array([(g * w[0]).sum(), (g * w[1]).sum(), (g * w[2]).sum(),
                     -(g * w[0] * log_n).sum(), -(g * w[1] * log_d).sum()])
    return loss, grad


def _grid_losses(grid, log_n, log_d, log_l, delta):
    """The Huber loss at every start at once (one broadcast instead of 4500 calls)."""
    a, b, e, alpha, beta = (grid[:, i:i + 1] for i in range(5))
    pred = np.logaddexp(np.logaddexp(a - alpha * log_n, b - beta * log_d), e)
    abs_r = np.abs(pred - log_l)
    return np.where(abs_r <= delta, 0.5 * abs_r ** 2, delta * (abs_r - 0.5 * delta)).sum(axis=1)


def _data(n_params, n_samples, loss):
    n = positive_finite("N (parameters)", n_params)
    d = positive_finite("D (samples/tokens)", n_samples)
    l = positive_finite("loss", loss)
    count = same_length(N=n, D=d, loss=l)
    enough_points(count, 5, "Chinchilla surface")
    varies("N (model size)", n, distinct=2)
    varies("D (data)", d, distinct=2)
    return np.log(n), np.log(d), np.log(l)


def fit_chinchilla(n_params, n_samples, loss, n_starts: int | None = 16, starts=None,
                   delta: float = HUBER_DELTA) -> ChinchillaLaw:
    """Fit L(N, D). Starts: ``starts`` if given (rows of a, b, e, alpha, beta), else Hoffmann's grid.

    The grid is first scored (one objective evaluation per start) and L-BFGS-B runs from the
    ``n_starts`` best; ``n_starts=None`` runs all 4500, Epoch's exact protocol (minutes on one core).
    On Epoch's data both give the same optimum.
    """
    log_n, log_d, log_l = _data(n_params, n_samples, loss)
    args = (log_n, log_d, log_l, delta)
    grid = HOFFMANN_GRID if starts is None else np.atleast_2d(np.asarray(starts, dtype=float))
    if starts is None and n_starts is not None:
        scores = _grid_losses(grid, *args)
        grid = grid[np.argsort(scores, kind="stable")[:n_starts]]
    best = None
    # L-BFGS-B's BLAS calls are on 5x5 matrices; a threaded BLAS on a busy machine made each run ~15x slower
    with threadpool_limits(limits=1):
        for p0 in grid:
            r = minimize(_huber_objective, p0, args=args, jac=True, method="L-BFGS-B", options=LBFGSB_OPTIONS)
            if np.isfinite(r.fun) and (best is None or r.fun < best.fun):
                best = r
    if best is None:
        raise DegenerateInputError("Chinchilla surface: no start gave a finite loss")
    a, b, e, alpha, beta = best.x
    if alpha <= 0 or beta <= 0:
        raise DegenerateInputError(f"Chinchilla surface: fitted exponents alpha={alpha:.3g}, beta={beta:.3g} are not "
                                   "positive; loss does not fall with N and D in this data")
    return ChinchillaLaw(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)),
                         alpha=float(alpha), beta=float(beta))


def law_to_start(law: ChinchillaLaw) -> np.ndarray:
    """A fitted law as an L-BFGS-B start (warm start for bootstrap refits)."""
    return np.array([np.log(law.A), np.log(law.B), np.log(law.E), law.alpha, law.beta])


@dataclass(frozen=True)
class SurfaceExtrapolation:
    threshold_compute: float  # points at or above this compute were held out
    n_held_out: int
    mean_relative_error: float
    max_relative_error: float


def chinchilla_extrapolation(n_params, n_samples, loss, compute, holdout_share: float = 0.1,
                             **fit_kwargs) -> SurfaceExtrapolation:
    """Fit L(N, D) on the points below the top ``holdout_share`` of compute, score on those held out:
    how well the surface predicts runs larger than any it was fitted on."""
    c = np.asarray(compute, dtype=float)
    threshold = float(np.quantile(c, 1 - holdout_share))
    held = c >= threshold
    if held.all() or not held.any():
        raise DegenerateInputError("extrapolation: compute does not vary, nothing to hold out from")
    n, d, l = (np.asarray(a, dtype=float) for a in (n_params, n_samples, loss))
    law = fit_chinchilla(n[~held], d[~held], l[~held], **fit_kwargs)
    rel = np.abs(law(n[held], d[held]) - l[held]) / l[held]
    return SurfaceExtrapolation(threshold, int(held.sum()), float(rel.mean()), float(rel.max()))
