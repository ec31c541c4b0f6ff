import numpy as np
import pytest

from analysis.checks import DegenerateInputError
from analysis.frontier import binned_lower_envelope, geometric_bins_envelope, pareto_frontier


def test_pareto_keeps_strict_running_minimum_and_best_of_ties():
    c = [10, 1, 5, 5, 20, 30, 2]
    e = [0.5, 0.9, 0.7, 0.6, 0.55, 0.4, 0.95]
    x, y = pareto_frontier(c, e)
    assert x.tolist() == [1, 5, 10, 30]
    assert y.tolist() == [0.9, 0.6, 0.5, 0.4]


def test_binned_envelope_uses_equal_log_bins_and_centres():
    # log10 compute 0..4 in 2 bins: [0, 2) and [2, 4]; the maximum falls in the last bin
    c = [1, 10, 50, 100, 1000, 10000]
    e = [0.9, 0.8, 0.85, 0.7, 0.75, 0.6]
    x, y = binned_lower_envelope(c, e, n_bins=2)
    np.testing.assert_allclose(x, [10.0, 1000.0])  # geometric centres 10^1, 10^3
    assert y.tolist() == [0.8, 0.6]


def test_binned_envelope_pad_extends_the_top_edge():
    # log10 compute 0..3.9 padded by 0.1 to 4.0, 2 bins: [0, 2) and [2, 4); 10^3.9 sits inside the last bin
    c = [1, 10, 100, 10 ** 3.9]
    e = [0.9, 0.8, 0.7, 0.6]
    x, y = binned_lower_envelope(c, e, n_bins=2, pad_decades=0.1)
    np.testing.assert_allclose(x, [10.0, 1000.0])
    assert y.tolist() == [0.8, 0.6]
    x0, _ = binned_lower_envelope(c, e, n_bins=2)  # unpadded: edges 0, 1.95, 3.9
    np.testing.assert_allclose(np.log10(x0), [0.975, 2.925])
    with pytest.raises(DegenerateInputError, match="pad_decades"):
        binned_lower_envelope(c, e, n_bins=2, pad_decades=-0.1)


def test_geometric_bins_anchor_at_powers_of_ten():
    c = [1.0, 9.9, 10.0, 31.0, 1000.0]
    e = [0.9, 0.8, 0.7, 0.75, 0.5]
    x, y = geometric_bins_envelope(c, e, bins_per_decade=1)
    np.testing.assert_allclose(x, [10 ** 0.5, 10 ** 1.5, 10 ** 3.5])
    assert y.tolist() == [0.8, 0.7, 0.5]
    # two per decade: 10 and 31 split at 10^1.5 = 31.6, so both stay in [10, 31.6)
    x2, y2 = geometric_bins_envelope(c, e, bins_per_decade=2)
    assert y2.tolist() == [0.9, 0.8, 0.7, 0.5]


@pytest.mark.parametrize("fn", [pareto_frontier, binned_lower_envelope, geometric_bins_envelope])
def test_frontiers_reject_nan_and_non_positive(fn):
    with pytest.raises(DegenerateInputError, match="NaN"):
        fn([1, 2, 3], [0.5, float("nan"), 0.3])
    with pytest.raises(DegenerateInputError, match="non-positive"):
        fn([1, 2, 3], [0.5, 0.0, 0.3])


def test_binned_envelope_rejects_constant_compute():
    with pytest.raises(DegenerateInputError, match="compute does not vary"):
        binned_lower_envelope([5, 5, 5], [0.3, 0.2, 0.1])
