"""Inverse scaling, curse of multilinguality and the planner on a synthetic sweep whose answers are known."""
import pandas as pd
import pytest

from analysis.checks import DegenerateInputError
from analysis.inverse_scaling import inverse_scaling_holds, shortest_token_length, token_length_table
from analysis.load import results_frame
from analysis.multilinguality import english_gap, language_accuracy_table, training_mix, where_gap_closes
from analysis.planner import compute_optimal_frontier, config_laws, plan
from analysis_sweep import synthetic_rows


@pytest.fixture(scope="module")
def frame():
    return results_frame(synthetic_rows())


def test_token_length_table_compares_like_with_like(frame):
    table = token_length_table(frame, "image_tokens")
    assert table["image_tokens"].tolist() == [16, 36, 64] * 3
    assert table["model"].tolist()[::3] == ["tiny", "small", "base"]  # by parameter count
    assert (table["runs"] == 1).all()  # one mix, largest samples seen, text at full length
    assert set(table["languages"]) == {"en"}


def test_shortest_image_token_length_shrinks_with_model_size(frame):
    short = shortest_token_length(token_length_table(frame, "image_tokens"), "image_tokens", tolerance=0.01)
    # the penalty at 36 tokens is 40/sqrt(N) * 0.78: 0.031 (tiny), 0.016 (small), 0.008 (base) against 0.01
    assert short.set_index("model")["shortest_tokens"].to_dict() == {"tiny": 64, "small": 64, "base": 36}
    assert inverse_scaling_holds(short)
    text = shortest_token_length(token_length_table(frame, "text_tokens"), "text_tokens", tolerance=0.01)
    assert text.set_index("model")["shortest_tokens"].to_dict() == {"tiny": 32, "small": 16, "base": 16}


def test_one_model_size_is_refused_for_inverse_scaling(frame):
    table = token_length_table(frame[frame["model"] == "base"], "image_tokens")
    with pytest.raises(DegenerateInputError, match="one model size only"):
        shortest_token_length(table, "image_tokens")


def test_training_mix():
    assert training_mix("en", 1.0) == "english-only"
    assert training_mix("en,fr", 0.5) == "worldwide"
    assert training_mix("en,fr", 1.0) == "english-only"


def test_english_gap_closes_where_capacity_allows(frame):
    table = language_accuracy_table(frame)
    assert set(table["mix"]) == {"english-only", "worldwide"}
    ww = table[table["mix"] == "worldwide"]
    en = table[table["mix"] == "english-only"]
    assert (ww["non_english"].to_numpy() > en["non_english"].to_numpy()).all()  # worldwide data helps other languages
    gap = english_gap(table, tolerance=0.0)
    closes = where_gap_closes(gap).set_index("model")
    assert pd.isna(closes.loc["tiny", "closes_at_samples_seen"])  # the curse never lifts for the smallest
    assert closes.loc["small", "closes_at_samples_seen"] == 1_000_000  # only at the largest seen-pair scale
    assert closes.loc["base", "closes_at_samples_seen"] == 100_000  # from the smallest scale on
    assert closes.loc["tiny", "gap_at_largest"] == pytest.approx(-0.03, abs=0.005)


def test_english_gap_needs_both_mixes(frame):
    table = language_accuracy_table(frame[frame["languages"] != "en"])
    with pytest.raises(DegenerateInputError, match="both worldwide and English-only"):
        english_gap(table)


def test_planner_predicts_best_configuration_with_interval(frame):
    laws, skipped = config_laws(frame, n_resamples=50, seed=0)
    assert skipped == []
    assert len(laws) == 3 * 5 * 2
    budget = max(cl.max_compute for cl in laws)
    p = plan(laws, budget)
    assert p["error_low"] <= p["predicted_error"] <= p["error_high"]
    assert 0 < p["agreement"] <= 1
    best = min(laws, key=lambda cl: cl.law(budget))
    assert (p["model"], p["image_tokens"], p["text_tokens"]) == (best.model, best.image_tokens, best.text_tokens)
    assert p["samples_seen"] == pytest.approx(budget / best.flops_per_sample)
    table = compute_optimal_frontier(laws, [budget / 10, budget, budget * 10])
    assert table["budget"].is_monotonic_increasing
    assert table["predicted_error"].is_monotonic_decreasing


def test_planner_degenerate_input(frame):
    one_scale = frame[frame["samples_seen"] == 1_000_000]
    with pytest.raises(DegenerateInputError, match="need 3"):
        config_laws(one_scale)
    laws, _ = config_laws(frame, n_resamples=20)
    with pytest.raises(DegenerateInputError, match="positive"):
        plan(laws, -1.0)
    bad = frame.copy()
    bad.loc[bad.index[5], "zeroshot_top1_mean"] = 1.2  # accuracy above 1: error would be negative
    with pytest.raises(DegenerateInputError, match="non-positive"):
        config_laws(bad, n_resamples=20)
