"""Binomial intervals, chance levels and eval-set sizes: pinned against values computed independently."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import binom

from analysis.stats import (above_chance, accuracy_interval, chance_level, clopper_pearson_interval,
                            difference_interval, eval_size, language_metric, wilson_bounds, wilson_interval)

Z = 1.959963984540054


def wilson_by_roots(k, n):
    """The Wilson bounds as the roots of (k/n - p)^2 = z^2 p (1 - p) / n, a quadratic in p."""
    ph = k / n
    a, b, c = 1 + Z * Z / n, -(2 * ph + Z * Z / n), ph * ph
    return tuple(sorted(np.roots([a, b, c]).real))


def clopper_pearson_by_tails(k, n, alpha=0.05):
    """Exact bounds from the binomial tails themselves (no beta function)."""
    low = 0.0 if k == 0 else brentq(lambda p: binom.sf(k - 1, n, p) - alpha / 2, 1e-12, 1 - 1e-12)
    high = 1.0 if k == n else brentq(lambda p: binom.cdf(k, n, p) - alpha / 2, 1e-12, 1 - 1e-12)
    return low, high


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (3, 300), (150, 300), (299, 300), (1, 1)])
def test_wilson_matches_the_quadratic_roots(k, n):
    assert wilson_interval(k, n) == pytest.approx(wilson_by_roots(k, n), abs=1e-9)


def test_wilson_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, Z * Z / (10 + Z * Z)), abs=1e-12)  # 0.27753
    low, high = wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    # 1% accuracy on the demo's 300 zero-shot images: chance (1/100) sits well inside the interval
    low, high = accuracy_interval(0.01, 300)
    assert low < 0.01 < high and (low, high) == pytest.approx((0.003406, 0.028983), abs=1e-6)


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (5, 10), (3, 300), (42, 50)])
def test_clopper_pearson_matches_the_binomial_tails(k, n):
    assert clopper_pearson_interval(k, n) == pytest.approx(clopper_pearson_by_tails(k, n), abs=1e-7)


def test_clopper_pearson_known_values():
    assert clopper_pearson_interval(0, 10)[1] == pytest.approx(1 - 0.025 ** 0.1, abs=1e-9)   # 0.30850
    assert clopper_pearson_interval(10, 10)[0] == pytest.approx(0.025 ** 0.1, abs=1e-9)      # 0.69150
    assert clopper_pearson_interval(5, 10) == pytest.approx((0.187086, 0.812914), abs=1e-6)
    # exact is wider than Wilson
    w, cp = wilson_interval(5, 10), clopper_pearson_interval(5, 10)
    assert cp[0] < w[0] and cp[1] > w[1]


def test_newcombe_difference_interval_matches_his_paper():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80, method 10
    low, high = difference_interval(56 / 70, 70, 48 / 80, 80)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    # a difference smaller than its interval is not significant
    low, high = difference_interval(0.019, 300, 0.013, 300)
    assert low < 0 < high


def test_vectorised_bounds_equal_the_scalar_ones():
    acc, n = np.array([0.0, 0.01, 0.5, 1.0]), np.array([10, 300, 7, 50])
    low, high = wilson_bounds(acc, n)
    for a, m, lo, hi in zip(acc, n, low, high):
        assert (lo, hi) == pytest.approx(accuracy_interval(a, m), abs=1e-12)


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="n > 0"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="outside"):
        clopper_pearson_interval(11, 10)


def test_above_chance():
    assert not above_chance(0.019, 300, 0.01)  # the noise: 1.9% on 300 images over 100 classes
    assert above_chance(0.10, 300, 0.01)


def test_sizes_and_chance_from_the_builtin_columns():
    frame = pd.DataFrame({"zeroshot_top1_en": [0.5], "zeroshot_top1_fr": [0.4], "zeroshot_top1_mean": [0.45],
                          "zeroshot_n_en": [300], "zeroshot_n_fr": [280], "zeroshot_classes": [100],
                          "i2t_r5_en": [0.3], "retrieval_n_en": [200]})
    assert eval_size(frame, "zeroshot_top1_en").tolist() == [300]
    assert eval_size(frame, "zeroshot_top1_mean").tolist() == [280]  # same images per language: the smallest
    assert chance_level(frame, "zeroshot_top1_mean").tolist() == [0.01]
    assert eval_size(frame, "i2t_r5_en").tolist() == [200]
    assert chance_level(frame, "i2t_r5_en").tolist() == [5 / 200]  # recall@k over a pool of N: k/N
    assert eval_size(frame, "loss") is None
    old = frame.drop(columns=["zeroshot_n_en", "zeroshot_n_fr", "zeroshot_classes"])
    assert eval_size(old, "zeroshot_top1_en") is None and chance_level(old, "zeroshot_top1_en") is None


def test_sizes_and_chance_from_suite_columns():
    frame = pd.DataFrame({"imagenet/top5_en": [0.5], "imagenet/top1_mean": [0.3], "imagenet/n_en": [1000],
                          "imagenet/n_de": [900], "imagenet/classes": [1000],
                          "xm/t2i_r1_en": [0.2], "xm/n_en": [3600]})
    assert eval_size(frame, "imagenet/top5_en").tolist() == [1000]
    assert chance_level(frame, "imagenet/top5_en").tolist() == [5 / 1000]
    assert eval_size(frame, "imagenet/top1_mean").tolist() == [900]
    assert chance_level(frame, "xm/t2i_r1_en").tolist() == [1 / 3600]
    assert chance_level(frame, "xm/t2i_r1_de") is None  # no size for that language


def test_language_metric():
    assert language_metric("zeroshot_top1_mean", "en") == "zeroshot_top1_en"
    assert language_metric("zeroshot_top1_non_en", "en") == "zeroshot_top1_en"
    assert language_metric("imagenet/top1_mean", "en") == "imagenet/top1_en"
    assert math.isclose(Z, 1.959963984540054)
