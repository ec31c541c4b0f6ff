"""Thresholds, entry probabilities and noisy-OR keep probabilities on small count tables."""
import numpy as np
import pytest

from clipscale.curation.balance import (ThresholdError, entry_probabilities, keep_probability,
                                        language_thresholds, tail_share, threshold_for_tail_share)

EN = np.array([80, 1, 10, 2, 0, 3, 4])      # 100 matches; below 10: 1+2+3+4 = 10
DE = np.array([70, 2, 20, 8, 0])            # 100 matches; ascending shares .02 .10 .30 1.0


def test_tail_share_counts_matches_below_t():
    assert tail_share(EN, 10) == pytest.approx(0.10)
    assert tail_share(EN, 11) == pytest.approx(0.20)
    assert tail_share(EN, 1) == 0.0


def test_threshold_is_the_count_whose_cumulative_share_is_nearest_p():
    assert threshold_for_tail_share(DE, 0.10) == 8
    assert threshold_for_tail_share(DE, 0.19) == 8      # .10 nearer than .30
    assert threshold_for_tail_share(DE, 0.21) == 20
    assert threshold_for_tail_share(DE, 0.0) == 2       # zero counts never make t = 0
    # A tie goes to the smaller count: shares .25 .50 1.0, p = .375.
    assert threshold_for_tail_share(np.array([1, 1, 2]), 0.375) == 1


def test_language_thresholds_from_given_t_en():
    t, p, t_en = language_thresholds({"en": EN, "de": DE, "fr": np.zeros(3, int)}, t_en=10)
    assert (t, p, t_en) == ({"en": 10, "de": 8}, pytest.approx(0.10), 10)


def test_language_thresholds_from_target_tail_share():
    # English ascending shares .01 .03 .06 .10 .20 1.0: nearest .05 is .06 -> t_en = 3,
    # whose measured tail share is (1 + 2) / 100 = .03; German: nearest .03 is .02 -> t = 2.
    t, p, t_en = language_thresholds({"en": EN, "de": DE}, target_tail_share=0.05)
    assert t_en == 3 and p == pytest.approx(0.03) and t == {"en": 3, "de": 2}


def test_english_less_pool_is_a_clear_error():
    with pytest.raises(ThresholdError, match="English-less"):
        language_thresholds({"de": DE}, t_en=10)
    with pytest.raises(ThresholdError, match="English-less"):
        language_thresholds({"en": np.zeros(4, int), "de": DE}, t_en=10)
    with pytest.raises(ThresholdError, match="exactly one"):
        language_thresholds({"en": EN}, t_en=10, target_tail_share=0.1)


def test_entry_probabilities():
    assert entry_probabilities(DE, 8).tolist() == pytest.approx([8 / 70, 1.0, 0.4, 1.0, 1.0])
    with pytest.raises(ThresholdError):
        entry_probabilities(DE, 0)


def test_noisy_or_keep_probability():
    p_e = entry_probabilities(DE, 8)
    assert keep_probability([], p_e) == 0.0
    assert keep_probability([1], p_e) == 1.0
    assert keep_probability([2], p_e) == pytest.approx(0.4)
    assert keep_probability([0, 2], p_e) == pytest.approx(1 - (1 - 8 / 70) * 0.6)
    assert keep_probability([0, 1, 2], p_e) == 1.0
