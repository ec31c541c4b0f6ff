"""The per-epoch online-curation draw (train/online_curation.py): kept frequencies match the keep
probabilities (binomial tests), per-language kept shares are counted, and the draw replays."""
from __future__ import annotations

import random

from scipy.stats import binomtest

from clipscale.train.online_curation import KeptShare, epoch_caption, is_online_sample


def meta(probs, langs, seed=3):
    return {"language": langs[0], "captions": ["second", "third"][:len(probs) - 1],
            "curation": {"keep_probs": probs, "languages": langs, "seed": seed,
                         "captions_field": "captions"}}


def test_each_captions_kept_frequency_matches_its_keep_probability():
    m = meta([0.3, 0.0, 0.8], ["en", "de", "fr"])
    epochs = 4000
    picks = [epoch_caption("img-1", "first", m, run_seed=7, epoch=e) for e in range(epochs)]
    kept = {i: sum(p is not None and p[0] == i for p in picks) for i in range(3)}
    assert kept[1] == 0                                      # no match: never trained on
    # caption i is picked among the matched ones uniformly, then kept with its probability
    for i, expected in ((0, 0.5 * 0.3), (2, 0.5 * 0.8)):
        assert binomtest(kept[i], epochs, expected).pvalue > 1e-3, (i, kept[i] / epochs)
    assert {p[1:] for p in picks if p} == {("first", "en"), ("third", "fr")}


def test_kept_share_per_language_per_epoch_matches_keep_probabilities():
    share = KeptShare()
    probs = {"en": 0.2, "ja": 0.7}
    for e in range(3):
        for i in range(3000):
            lang = "en" if i % 2 else "ja"
            share.add(f"k{i}", meta([probs[lang]], [lang]), run_seed=1, epoch=e)
    for e in range(3):
        for lang, p in probs.items():
            n = share.offered[e][lang]
            assert n == 1500
            assert binomtest(share.kept[e][lang], n, p).pvalue > 1e-3
        assert set(share.row_columns(e)) == {"kept_share_en", "kept_share_ja"}
    assert share.kept[0] != share.kept[1]                    # a new draw every epoch


def test_the_draw_replays_on_resume_and_ignores_order_and_depends_on_the_run_seed():
    keys = [f"s{i}" for i in range(400)]
    m = meta([0.5, 0.5], ["en", "en"])
    full = {k: epoch_caption(k, "a", m, run_seed=4, epoch=2) for k in keys}
    # resumed mid-epoch: a fresh process draws the rest, in another order
    first, rest = keys[:150], keys[150:]
    random.Random(0).shuffle(rest)
    resumed = {k: full[k] for k in first}
    resumed.update({k: epoch_caption(k, "a", m, run_seed=4, epoch=2) for k in rest})
    assert resumed == full
    other_seed = {k: epoch_caption(k, "a", m, run_seed=5, epoch=2) for k in keys}
    assert other_seed != full
    assert is_online_sample(m) and not is_online_sample({"language": "en"})
