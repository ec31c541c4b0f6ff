"""Evaluation metrics on hand-computed features, and the driver on a small real torch model."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from clipscale.data.emoji_text import LANGUAGES
from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
from clipscale.data.shards import Sample, iter_shard, write_tar
from clipscale.evaluation import (EvalSets, chance_levels, ensemble_class_features, evaluate,
                                  retrieval_recall, zeroshot_top1)
from clipscale.text.tokenizer import load_tokenizer, train_tokenizer


def test_zeroshot_top1_hand_computed():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.2, 1.0]])
    classes = torch.tensor([[2.0, 0.0], [0.0, 5.0]])  # scale must not matter: cosine
    # images 0, 1, 3 are nearest their label; image 2 ties both classes exactly: counts as wrong
    assert zeroshot_top1(images, classes, torch.tensor([0, 1, 0, 1])) == pytest.approx(0.75)
    assert zeroshot_top1(images, classes, torch.tensor([1, 0, 1, 0])) == 0.0
    same = torch.ones(4, 2)
    assert zeroshot_top1(same, torch.ones(3, 2), torch.tensor([0, 0, 0, 0])) == 0.0


def test_retrieval_recall_hand_computed():
    images = torch.eye(3)
    texts = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])
    # sims rows (image queries): [1,1,0], [0,0,0], [0,0,1]
    # i2t ranks (wrong texts scoring >= the true one): 1, 2, 0
    # t2i ranks (columns as queries): 0, 2, 0
    r = retrieval_recall(images, texts, ks=(1, 2, 5))
    assert r == pytest.approx({"i2t_r1": 1 / 3, "i2t_r2": 2 / 3, "i2t_r5": 1.0,
                               "t2i_r1": 2 / 3, "t2i_r2": 2 / 3, "t2i_r5": 1.0})
    assert set(retrieval_recall(images, texts)) == {"i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"}
    with pytest.raises(ValueError):
        retrieval_recall(images, texts[:2])


def test_ensemble_class_features():
    feats = torch.tensor([[[3.0, 0.0], [0.0, 0.5]], [[1.0, 0.0], [1.0, 0.0]]])
    out = ensemble_class_features(feats)
    s = 1 / math.sqrt(2)
    assert out.flatten().tolist() == pytest.approx([s, s, 1.0, 0.0])


class PixelBagCLIP(nn.Module):
    """A real, small two-tower model: images average-pooled to 4x4 and projected, texts embedded
    by a mean EmbeddingBag over non-pad tokens."""

    def __init__(self, vocab_size: int, dim: int = 32):
        super().__init__()
        torch.manual_seed(0)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.image_proj = nn.Linear(3 * 16, dim)
        self.text_embed = nn.EmbeddingBag(vocab_size, dim, mode="mean", padding_idx=0)
        self.dropout = nn.Dropout(0.5)

    def encode_image(self, x):
        return self.dropout(self.image_proj(self.pool(x).flatten(1)))

    def encode_text(self, tokens):
        return self.text_embed(tokens)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    cfg = EmojiWorldConfig(num_samples=300, samples_per_shard=300, num_concepts=30,
                           eval_num_classes=8, eval_images_per_class=2, eval_retrieval_pairs=12)
    generate_pool(cfg, d / "world", progress=False)
    tok = train_tokenizer(d / "world" / "pool", d / "tok.model", vocab_size=600)
    return d, cfg, tok


def test_evaluate_small_real_model(world):
    d, cfg, tok_path = world
    tok = load_tokenizer(tok_path)
    model = PixelBagCLIP(tok.vocab_size)
    model.train()
    sets = EvalSets.load(d / "world" / "eval", 32)
    assert EvalSets.load(d / "world" / "eval", 32) is sets  # cached: loaded once
    assert sets.zeroshot_images.shape == (16, 32, 32, 3) and sets.skipped == 0
    m = evaluate(model, tok, d / "world" / "eval", image_size=32, context_length=16,
                 batch_size=7, device="cpu")
    names = {f"zeroshot_top1_{lang}" for lang in LANGUAGES}
    names |= {f"{m}_{k}_{lang}" for m in ("i2t", "t2i") for k in ("r1", "r5") for lang in LANGUAGES}
    names |= {"zeroshot_top1_mean", "zeroshot_top1_non_en"}
    counts = {f"{kind}_n_{lang}" for kind in ("zeroshot", "retrieval") for lang in LANGUAGES} | {"zeroshot_classes"}
    assert set(m) == names | counts and names == set(chance_levels(sets))
    # the sizes the analysis draws binomial intervals and chance levels from
    assert all(m[f"zeroshot_n_{lang}"] == 16 and m[f"retrieval_n_{lang}"] == 12 for lang in LANGUAGES)
    assert m["zeroshot_classes"] == 8
    assert all(0.0 <= m[k] <= 1.0 for k in names)
    assert m["zeroshot_top1_mean"] == pytest.approx(np.mean([m[f"zeroshot_top1_{l}"] for l in LANGUAGES]))
    assert m["zeroshot_top1_non_en"] == pytest.approx(
        np.mean([m[f"zeroshot_top1_{l}"] for l in LANGUAGES if l != "en"]))
    for lang in LANGUAGES:  # recall@5 can never be below recall@1
        assert m[f"i2t_r5_{lang}"] >= m[f"i2t_r1_{lang}"]
    assert model.training  # mode restored
    # dropout is off during evaluation: a second pass gives the same numbers
    assert evaluate(model, str(tok_path), sets, 32, 16, 64, "cpu") == m


def test_chance_levels(world):
    d, cfg, _ = world
    sets = EvalSets.load(d / "world" / "eval", 32)
    c = chance_levels(sets)
    assert c["zeroshot_top1_en"] == 1 / 8 and c["zeroshot_top1_mean"] == 1 / 8
    assert c["i2t_r1_ja"] == 1 / 12 and c["t2i_r5_ar"] == 5 / 12


def test_corrupt_eval_image_skipped_and_counted(world, tmp_path):
    d, cfg, _ = world
    ev = tmp_path / "eval"
    shutil.copytree(d / "world" / "eval", ev)
    samples = list(iter_shard(ev / "zeroshot.tar"))
    samples[0] = Sample(key=samples[0].key, image=b"\xff\xd8broken", image_ext="jpg",
                        text=samples[0].text, meta=samples[0].meta)
    write_tar(ev / "zeroshot.tar", samples)
    sets = EvalSets.load(ev, 32)
    assert sets.skipped == 1 and len(sets.zeroshot_labels) == len(samples) - 1


def test_missing_eval_set_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="classes.json is missing"):
        EvalSets.load(tmp_path, 32)
