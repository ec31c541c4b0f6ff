"""CLIPA token reductions as the training step receives them: shapes and token counts per method,
schedules' FLOPs per stage, the syntax selection, and the per-run language-mix filter."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from clipscale.config import ConfigError, build_run_config
from clipscale.models.flops import train_flops_per_sample
from clipscale.models.registry import get_spec
from clipscale.text.syntax import ADJ, NOUN, OTHER, VERB, english_tag, select_words, syntax_reduce
from clipscale.train.batches import make_batch
from clipscale.train.language_mix import keep_rates, keeps, mix_after
from clipscale.train.plan import compute_by_stage, plan_run, stage_columns


def run(stages, samples_seen=4096, model="tiny-s"):
    return build_run_config({"data": {"train_shards": "x"}, "model": {"name": model}, "stages": stages,
                             "train": {"samples_seen": samples_seen, "global_batch_size": 64}})


def raw_batch(size, b=4, lengths=(30, 5, 12, 20), ctx=32):
    tokens = np.zeros((b, ctx), dtype=np.int32)
    for i, n in enumerate(lengths):
        tokens[i, :n] = np.arange(1, n + 1)
    return {"image": np.zeros((b, size, size, 3), dtype=np.uint8), "tokens": tokens}


@pytest.mark.parametrize("reduction,size,keep,tokens", [
    ("none", 64, 1.0, 64), ("resize", 32, 1.0, 16), ("resize", 16, 1.0, 4),
    ("random", 64, 0.5, 32), ("grid", 64, 0.25, 16), ("block", 64, 0.25, 16), ("random", 32, 0.3, 5)])
def test_image_reductions_give_the_planned_token_count(reduction, size, keep, tokens):
    cfg = run([{"image_size": size, "image_reduction": reduction, "image_keep": keep}])
    plan = plan_run(cfg)[0]
    assert plan.image_tokens == tokens and plan.grid == size // 8
    batch = make_batch(raw_batch(size), cfg.stages[0], plan, "cpu", "fp32", torch.Generator().manual_seed(0))
    assert batch.images.shape == (4, 3, size, size)
    if reduction in ("random", "grid", "block"):
        assert batch.patch_keep.shape == (4, tokens)
        assert all(len(set(row.tolist())) == tokens for row in batch.patch_keep)
        assert int(batch.patch_keep.max()) < plan.grid ** 2
    else:
        assert batch.patch_keep is None


@pytest.mark.parametrize("method", ["truncate", "random", "block", "syntax"])
def test_text_reductions_give_k_tokens_in_order(method):
    cfg = run([{"image_size": 32, "text_tokens": 8, "text_reduction": method}])
    plan = plan_run(cfg)[0]
    batch = make_batch(raw_batch(32), cfg.stages[0], plan, "cpu", "fp32", torch.Generator().manual_seed(1))
    assert batch.tokens.shape == (4, 8)
    lengths = (batch.tokens != 0).sum(1).tolist()
    assert lengths == [8, 5, 8, 8]                         # a 5-token caption is kept whole
    assert batch.tokens[1, :5].tolist() == [1, 2, 3, 4, 5]
    for row in batch.tokens:                               # order kept by every method
        kept = row[row != 0].tolist()
        assert kept == sorted(kept)
    if method in ("truncate", "syntax"):
        assert batch.tokens[0].tolist() == list(range(1, 9))
    if method == "block":
        kept = batch.tokens[0].tolist()
        assert kept == list(range(kept[0], kept[0] + 8))


def test_two_stage_schedule_flops_per_stage_and_total():
    cfg = run([{"samples": 3072, "image_size": 32, "text_tokens": 8},
               {"image_size": 64, "image_reduction": "random", "image_keep": 0.3}])
    spec = get_spec("tiny-s")
    first, second = plan_run(cfg)
    assert (first.samples, second.samples) == (3072, 1024)
    assert (first.image_tokens, first.text_tokens) == (16, 8)
    assert (second.image_tokens, second.text_tokens) == (19, 32)  # round(64 x 0.3)
    assert first.train_flops_per_sample == train_flops_per_sample(spec, 16, 8)
    # the mask drops tokens after the patch embedding: all 64 patches are still embedded
    assert second.train_flops_per_sample == train_flops_per_sample(spec, 19, 32, embedded_patches=64)
    assert second.train_flops_per_sample > train_flops_per_sample(spec, 19, 32)
    assert first.compute + second.compute == pytest.approx(
        3072 * first.train_flops_per_sample + 1024 * second.train_flops_per_sample)
    # what the results rows carry, mid-run and at the end
    plans = [first, second]
    assert compute_by_stage(plans, 2048) == [2048 * first.train_flops_per_sample, 0.0]
    assert compute_by_stage(plans, 3584) == [first.compute, 512 * second.train_flops_per_sample]
    cols = stage_columns(plans, 4096)
    assert cols["stages"] == 2 and cols["stage1_image_tokens"] == 19 and cols["stage0_text_tokens"] == 8
    assert cols["stage0_compute"] + cols["stage1_compute"] == first.compute + second.compute


def test_impossible_reductions_are_refused_with_the_field_named():
    with pytest.raises(ConfigError, match=r"stages\[0\].image_keep=0.3: no rectangle of 19"):
        run([{"image_size": 64, "image_reduction": "block", "image_keep": 0.3}])
    with pytest.raises(ConfigError, match=r"stages\[0\].*5x5 patch grid"):
        run([{"image_size": 40, "image_reduction": "grid", "image_keep": 0.25}])
    with pytest.raises(ConfigError, match=r"stages\[0\].text_tokens=40 exceeds"):
        run([{"image_size": 32, "text_tokens": 40}])


def test_english_tagger_ranks():
    assert [english_tag(w) for w in "the red cat running quickly on a beautiful table".split()] == \
        [OTHER, ADJ, NOUN, VERB, OTHER, OTHER, OTHER, ADJ, NOUN]


def test_syntax_keeps_nouns_then_adjectives_then_verbs_in_order():
    one = lambda words: [1] * len(words)  # noqa: E731  every word one token
    caption = "a happy dog jumping over the small red ball"
    assert syntax_reduce(caption, "en", 2, one) == "dog ball"
    assert syntax_reduce(caption, "en", 4, one) == "happy dog small ball"
    assert syntax_reduce(caption, "en", 6, one) == "happy dog jumping small red ball"
    # word costs count: a noun of 3 pieces fills a budget of 3
    assert select_words(["big", "elephant", "walks"], [ADJ, NOUN, VERB], 3, lambda w: [1, 3, 1]) == ["elephant"]
    # other languages: order kept, short function words dropped; unspaced scripts untouched
    assert syntax_reduce("une tête de chat sur un fond rouge", "fr", 100, one) == "une tête chat sur fond rouge"
    assert syntax_reduce("红色背景上的猫", "zh", 2, one) == "红色背景上的猫"


def test_language_mix_rates_hit_the_target_share():
    pool = {"en": 350, "fr": 400, "ja": 250}
    for share in (0.0, 0.2, 0.35, 0.5, 0.9, 1.0):
        mix = mix_after(pool, keep_rates(pool, None, share))
        assert mix.get("en", 0.0) == pytest.approx(share)
    rates = keep_rates(pool, None, 0.5)            # only the other side is thinned
    assert rates["en"] == 1.0 and rates["fr"] == rates["ja"] < 1.0
    assert keep_rates(pool, ["en", "ja"], None) == {"en": 1.0, "fr": 0.0, "ja": 1.0}
    mix = mix_after(pool, keep_rates(pool, ["en", "ja"], 0.5))
    assert mix == pytest.approx({"en": 0.5, "ja": 0.5})
    with pytest.raises(ValueError, match="no English"):
        keep_rates({"fr": 10}, None, 0.5)
    # the draw is a deterministic function of key and seed, with the asked rate
    draws = [keeps(f"k{i}", 0.3, seed=7) for i in range(20000)]
    assert draws == [keeps(f"k{i}", 0.3, seed=7) for i in range(20000)]
    assert sum(draws) / len(draws) == pytest.approx(0.3, abs=0.01)


def test_decode_step_applies_language_filter_and_syntax(tmp_path):
    """The Ray Data decode UDF on a real emoji-world shard: only the run's languages pass, and
    syntax-reduced captions fit the stage's text tokens."""
    from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
    from clipscale.data.shards import iter_shard, list_shards
    from clipscale.text.tokenizer import load_tokenizer, train_tokenizer
    from clipscale.train.data import decode_shard

    generate_pool(EmojiWorldConfig(num_samples=400, samples_per_shard=400, num_concepts=20,
                                   eval_num_classes=2, eval_images_per_class=1, eval_retrieval_pairs=2),
                  tmp_path / "w", progress=False)
    (shard,) = list_shards(str(tmp_path / "w" / "pool"))
    samples = list(iter_shard(shard))
    language = {s.key: s.meta["language"] for s in samples}
    tok_path = tmp_path / "tok.model"
    train_tokenizer([s.text for s in samples], tok_path, vocab_size=512)
    kw = dict(tokenizer_path=str(tok_path), image_size=16, context_length=32, block_rows=1000,
              counter_name="unused")
    full = next(decode_shard({"path": [shard]}, **kw))
    only = next(decode_shard({"path": [shard]}, **kw, keep_rates={"en": 1.0, "fr": 1.0}))
    assert {language[k] for k in only["key"]} == {"en", "fr"}
    assert len(only["key"]) == sum(language[k] in ("en", "fr") for k in full["key"])
    reduced = next(decode_shard({"path": [shard]}, **kw, syntax_tokens=6))
    assert len(reduced["key"]) == len(full["key"])
    tok = load_tokenizer(tok_path)
    lengths = (reduced["tokens"] != 0).sum(1)
    english = [i for i, k in enumerate(reduced["key"]) if language[k] == "en"]
    assert english and (lengths < (full["tokens"] != 0).sum(1)).any()
    for i in english:
        text = tok.sp.DecodeIds([int(t) for t in reduced["tokens"][i] if t > 3])
        # SOT + at most 4 pieces + EOT, unless the first kept word alone is longer (the
        # worker's truncate then cuts it); function words are gone
        assert lengths[i] <= 6 or len(text.split()) == 1
        assert not {"a", "an", "the", "on", "with", "of"} & set(text.split())
