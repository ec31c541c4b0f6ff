"""Frontiers: the best error reached at each compute, from a cloud of (compute, error) points.

Scaling laws are fitted to the frontier, not to every run: a badly tuned small run says nothing
about what that compute can reach.
"""
from __future__ import annotations

import numpy as np

from analysis.checks import DegenerateInputError, positive_finite, same_length


def _points(compute, error) -> tuple[np.ndarray, np.ndarray]:
    c = positive_finite("compute", compute)
    e = positive_finite("error", error)
    same_length(compute=c, error=e)
    return c, e


def pareto_frontier(compute, error) -> tuple[np.ndarray, np.ndarray]:
    """Running-minimum Pareto frontier: the points no cheaper-or-equal point beats, by increasing compute.

    At equal compute only the lowest error is kept; a point joins the frontier only if its error is
    strictly below every point of lower compute.
    """
    c, e = _points(compute, error)
    order = np.lexsort((e, c))  # by compute, then error: the best of a tie comes first
    c, e = c[order], e[order]
    keep = np.zeros(c.size, dtype=bool)
    best = np.inf
    for i in range(c.size):
        if e[i] < best:
            keep[i] = True
            best = e[i]
    return c[keep], e[keep]


def _envelope(c: np.ndarray, e: np.ndarray, bin_index: np.ndarray, centres: np.ndarray):
    xs, ys = [], []
    for b in np.unique(bin_index):
        in_bin = bin_index == b
        xs.append(centres[b])
        ys.append(e[in_bin].min())
    return np.asarray(xs), np.asarray(ys)


def binned_lower_envelope(compute, error, n_bins: int = 10,
                          pad_decades: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cherti et al.'s lower envelope: ``n_bins`` equal bins on log10 compute from the smallest compute to
    the largest plus ``pad_decades``; each non-empty bin gives (geometric bin centre, minimum error in it).

    Bins are half-open, [lower edge, upper edge). Cherti et al.'s figures use 5 bins and a 0.1-decade pad;
    the pad moves every edge and centre, so it matters: on their ImageNet data the law is 5.86 C^-0.11 with
    it and 6.53 C^-0.12 without."""
    c, e = _points(compute, error)
    if n_bins < 1:
        raise DegenerateInputError(f"n_bins must be >= 1, got {n_bins}")
    if not (np.isfinite(pad_decades) and pad_decades >= 0):
        raise DegenerateInputError(f"pad_decades must be finite and >= 0, got {pad_decades}")
    lc = np.log10(c)
    if lc.max() == lc.min():
        raise DegenerateInputError("compute does not vary: all points have the same compute")
    edges = np.linspace(lc.min(), lc.max() + pad_decades, n_bins + 1)
    # without a pad the largest point sits on the last edge; it belongs to the last bin, not a bin of its own
    idx = np.clip(np.searchsorted(edges, lc, side="right") - 1, 0, n_bins - 1)
    centres = 10 ** ((edges[:-1] + edges[1:]) / 2)
    return _envelope(c, e, idx, centres)


def geometric_bins_envelope(compute, error, bins_per_decade: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Lower envelope over geometric bins anchored at powers of ten: bin k spans
    [10^(k/m), 10^((k+1)/m)) for m = ``bins_per_decade``; each non-empty bin gives (its geometric centre,
    the minimum error in it). Unlike ``binned_lower_envelope`` the edges do not move when a run is added,
    so envelopes from different sweeps line up."""
    c, e = _points(compute, error)
    if bins_per_decade < 1:
        raise DegenerateInputError(f"bins_per_decade must be >= 1, got {bins_per_decade}")
    # the small offset keeps an exact power of ten (10^k computed in floating point) in its own bin
    k = np.floor(np.log10(c) * bins_per_decade + 1e-9).astype(np.int64)
    k0 = k.min()
    idx = k - k0
    centres = 10 ** ((np.arange(idx.max() + 1) + k0 + 0.5) / bins_per_decade)
    return _envelope(c, e, idx, centres)
