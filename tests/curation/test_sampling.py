"""Seeded draws: reproducible, independent of order, and online epoch 0 equals the offline draw."""
import pytest

from clipscale.curation.sampling import (draw_keep, online_caption, online_choice, pick_caption,
                                         uniform)

KEYS = [f"k{i:05d}" for i in range(4000)]


def test_draws_are_fixed_by_seed_key_and_epoch():
    assert uniform(1, "keep", "a") == uniform(1, "keep", "a")
    assert uniform(1, "keep", "a") != uniform(2, "keep", "a")
    assert uniform(1, "keep", "a", epoch=0) != uniform(1, "keep", "a", epoch=1)
    assert all(0.0 <= uniform(0, "keep", k) < 1.0 for k in KEYS)


def test_keep_draw_rate_follows_the_probability():
    kept = sum(draw_keep(0.3, 7, k) for k in KEYS)
    assert abs(kept / len(KEYS) - 0.3) < 0.03
    assert all(draw_keep(1.0, 7, k) for k in KEYS[:100])
    assert not any(draw_keep(0.0, 7, k) for k in KEYS[:100])


def test_pick_caption_is_uniform_over_matched_captions():
    picks = [pick_caption([0, 2, 5], 0, k) for k in KEYS]
    assert set(picks) == {0, 2, 5}
    assert all(abs(picks.count(c) / len(KEYS) - 1 / 3) < 0.03 for c in (0, 2, 5))
    assert pick_caption([], 0, "x") is None


def test_online_epoch_zero_is_the_offline_draw_and_later_epochs_redraw():
    probs = [0.5, 0.0, 0.25]
    offline = []
    for k in KEYS[:500]:
        chosen = pick_caption([0, 2], 11, k)
        offline.append(chosen if draw_keep(probs[chosen], 11, k) else None)
    assert [online_choice(k, probs, 11, 0) for k in KEYS[:500]] == offline
    epoch1 = [online_choice(k, probs, 11, 1) for k in KEYS[:500]]
    assert epoch1 != offline
    assert 1 not in epoch1  # a caption with no match is never chosen


def test_online_caption_reads_what_curate_wrote():
    meta = {"captions": ["second"], "curation": {"keep_probs": [0.0, 1.0], "languages": [None, "en"],
                                                 "seed": 3, "captions_field": "captions"}}
    assert online_caption("k", "first", meta, epoch=4) == ("second", "en")
    meta["curation"]["keep_probs"] = [0.0, 0.0]
    assert online_caption("k", "first", meta, epoch=4) is None


@pytest.mark.parametrize("p", [0.1, 0.9])
def test_online_keep_rate_over_epochs(p):
    rate = sum(online_choice("one-key", [p], 5, e) is not None for e in range(3000)) / 3000
    assert abs(rate - p) < 0.03
