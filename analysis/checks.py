"""Input checks shared by every fit: degenerate data gets a clear message, never a traceback or a NaN."""
from __future__ import annotations

import numpy as np

from clipscale.errors import ClipscaleError


class DegenerateInputError(ClipscaleError, ValueError):
    """The data cannot support the requested fit (too few points, NaN, non-positive, no variation)."""


def positive_finite(name: str, values) -> np.ndarray:
    """``values`` as a 1-D float array; raises if any is NaN, infinite or <= 0 (logs are taken)."""
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise DegenerateInputError(f"{name}: no values")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DegenerateInputError(f"{name}: {int(bad.sum())} NaN or infinite value(s) at index {np.flatnonzero(bad)[:5].tolist()}")
    if (arr <= 0).any():
        idx = np.flatnonzero(arr <= 0)
        raise DegenerateInputError(f"{name}: {idx.size} non-positive value(s) (e.g. {arr[idx[0]]!r} at index {idx[0]}); "
                                   "a log-scale fit needs values > 0")
    return arr


def same_length(**arrays: np.ndarray) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DegenerateInputError(f"arrays differ in length: {lengths}")
    return next(iter(lengths.values()))


def enough_points(n: int, n_params: int, what: str) -> None:
    if n < n_params:
        raise DegenerateInputError(f"{what}: {n} point(s) for {n_params} parameters; need at least {n_params}")


def varies(name: str, values: np.ndarray, distinct: int = 2) -> None:
    n = np.unique(values).size
    if n < distinct:
        raise DegenerateInputError(f"{name} does not vary enough: {n} distinct value(s), need at least {distinct}")


def require_columns(frame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DegenerateInputError(f"{what}: results have no column(s) {missing}")
