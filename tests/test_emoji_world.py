"""The emoji-world pool: determinism, language mix, Zipf frequencies, noise, eval sets, lexicons."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from clipscale.data.emoji_text import (LANGUAGES, candidate_emoji, clean_name, count_phrase,
                                       join_names, write_lexicons)
from clipscale.data.emoji_world import (DEFAULT_LANGUAGE_MIX, EmojiWorldConfig, generate_pool,
                                        make_shard, world_concepts, zipf_probs)
from clipscale.data.shards import iter_shard, list_shards

SMALL = dict(num_concepts=60, eval_num_classes=10, eval_images_per_class=2,
             eval_retrieval_pairs=20)
POOL_N = 2000


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    cfg = EmojiWorldConfig(num_samples=POOL_N, samples_per_shard=500, **SMALL)
    out = tmp_path_factory.mktemp("emoji") / "world"
    summary = generate_pool(cfg, out, progress=False)
    samples = [s for p in list_shards(out / "pool") for s in iter_shard(p)]
    return cfg, out, summary, samples


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*.tar"))}


def test_pool_layout_and_samples(pool):
    cfg, out, summary, samples = pool
    assert len(samples) == POOL_N == summary["num_samples"]
    assert sorted(p.name for p in (out / "pool").iterdir()) == [f"shard-{i:05d}.tar" for i in range(4)]
    assert len({s.key for s in samples}) == POOL_N
    for s in samples:
        assert not s.problems and s.image_ext == "jpg" and s.text
        assert s.image[:2] == b"\xff\xd8"  # JPEG magic
        assert s.meta["language"] in LANGUAGES
        assert {"concepts", "counts", "is_noise", "noise", "caption_concepts"} <= set(s.meta)
        assert 1 <= sum(s.meta["counts"]) <= 3


def test_same_seed_byte_identical_and_parallel_equal(tmp_path):
    cfg = EmojiWorldConfig(num_samples=120, samples_per_shard=60, **SMALL)
    generate_pool(cfg, tmp_path / "a", progress=False)
    generate_pool(cfg, tmp_path / "b", workers=2, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    # pool, zero-shot, retrieval per language; then the suites' clip_benchmark tars (data/emoji_suites.py)
    assert len([k for k in a if not k.startswith("eval/suites/")]) == 2 + 1 + 14
    assert len(a) == 2 + 1 + 14 + 2 * 14 and a == b
    other = cfg.model_copy(update={"seed": 1})
    generate_pool(other, tmp_path / "c", progress=False)
    c = _files(tmp_path / "c")
    assert c["pool/shard-00000.tar"] != a["pool/shard-00000.tar"]
    # the world (and so the evaluation sets) depends on world_seed only
    assert c["eval/zeroshot.tar"] == a["eval/zeroshot.tar"]


def test_rerun_skips_and_other_config_refused(tmp_path):
    cfg = EmojiWorldConfig(num_samples=50, samples_per_shard=25, **SMALL)
    s1 = generate_pool(cfg, tmp_path, progress=False)
    shard = tmp_path / "pool" / "shard-00000.tar"
    mtime = shard.stat().st_mtime_ns
    s2 = generate_pool(cfg, tmp_path, progress=False)
    assert shard.stat().st_mtime_ns == mtime and s1 == s2
    with pytest.raises(ValueError, match="another config"):
        generate_pool(cfg.model_copy(update={"seed": 5}), tmp_path, progress=False)


def test_language_mix_matches_config(pool):
    cfg, _, summary, samples = pool
    counts = Counter(s.meta["language"] for s in samples)
    assert counts == Counter({k: v for k, v in summary["languages"].items() if v})
    mix = cfg.mix()
    assert mix == pytest.approx({k: DEFAULT_LANGUAGE_MIX[k] for k in LANGUAGES})
    # Pearson chi-square, 13 degrees of freedom: 34.5 is the 0.1% critical value
    chi2 = sum((counts[k] - POOL_N * p) ** 2 / (POOL_N * p) for k, p in mix.items())
    assert chi2 < 34.5
    en = counts["en"] / POOL_N
    assert abs(en - 0.35) < 4 * math.sqrt(0.35 * 0.65 / POOL_N)
    assert en < 0.5


def test_english_share_override():
    cfg = EmojiWorldConfig(english_share=0.1)
    mix = cfg.mix()
    assert mix["en"] == pytest.approx(0.1) and sum(mix.values()) == pytest.approx(1.0)
    # the other languages keep their relative shares
    assert mix["es"] / mix["ja"] == pytest.approx(DEFAULT_LANGUAGE_MIX["es"] / DEFAULT_LANGUAGE_MIX["ja"])
    only = EmojiWorldConfig(languages=["en", "ja"], language_mix={"en": 1.0}, english_share=0.25)
    assert only.mix() == pytest.approx({"en": 0.25, "ja": 0.75})


def _expected_appearance(cfg, probs):
    """P(concept c is in an image): count images show one draw; others k ~ U{1..3} iid draws."""
    ks = range(1, cfg.max_emoji_per_image + 1)
    several = np.mean([1 - (1 - probs) ** k for k in ks], axis=0)
    return cfg.count_share * probs + (1 - cfg.count_share) * several


def test_concept_frequencies_follow_zipf(pool):
    cfg, _, summary, samples = pool
    obs = np.zeros(cfg.num_concepts)
    for s in samples:
        for c in s.meta["concepts"]:
            obs[c] += 1
    assert obs.tolist() == summary["concept_images"]
    exp = POOL_N * _expected_appearance(cfg, zipf_probs(cfg.num_concepts, cfg.zipf_exponent))
    bins = [(0, 1), (1, 2), (2, 3), (3, 5), (5, 10), (10, 20), (20, 40), (40, 60)]
    for lo, hi in bins:  # Poisson-like z-score per rank bin
        o, e = obs[lo:hi].sum(), exp[lo:hi].sum()
        assert abs(o - e) < 4 * math.sqrt(e), (lo, hi, o, e)
    # the head really is heavy: rank 1 is ~15x as common as ranks 41-60 on average
    assert obs[0] > 8 * obs[40:60].mean()


def test_uniform_world_is_flat(tmp_path):
    # planning only (render=False): the same draws as a written shard, without the images
    cfg = EmojiWorldConfig(num_samples=1000, samples_per_shard=1000, zipf_exponent=0.0, **SMALL)
    stats = make_shard(cfg.model_dump_json(), 0, str(tmp_path / "unused.tar"), render=False)
    assert not (tmp_path / "unused.tar").exists()
    obs = np.array(stats["concept_images"])
    exp = 1000 * _expected_appearance(cfg, zipf_probs(cfg.num_concepts, 0.0))
    assert abs(obs[:10].sum() - exp[:10].sum()) < 4 * math.sqrt(exp[:10].sum())
    assert abs(obs[-10:].sum() - exp[-10:].sum()) < 4 * math.sqrt(exp[-10:].sum())


def test_noise_share_and_captions(pool):
    cfg, out, _, samples = pool
    concepts = world_concepts(cfg)
    noisy = [s for s in samples if s.meta["is_noise"]]
    assert abs(len(noisy) / POOL_N - cfg.noise_share) < 4 * math.sqrt(0.1 * 0.9 / POOL_N)
    for s in samples:
        lang, ids = s.meta["language"], s.meta["concepts"]
        if s.meta["noise"] == "mismatch":
            assert not set(s.meta["caption_concepts"]) & set(ids)
        if not s.meta["is_noise"]:
            assert s.meta["caption_concepts"] == ids
            for c in ids:
                assert concepts[c].names[lang] in s.text
    with_number = [s for s in samples if not s.meta["is_noise"] and max(s.meta["counts"]) > 1]
    assert len(with_number) > 0.05 * POOL_N
    assert all(any(ch.isdigit() for ch in s.text) for s in with_number)


def test_eval_sets_complete_in_every_language(pool):
    cfg, out, _, _ = pool
    ev = out / "eval"
    doc = json.loads((ev / "classes.json").read_text(encoding="utf-8"))
    assert doc["languages"] == list(LANGUAGES)
    assert len(doc["classes"]) == cfg.eval_num_classes
    ranks = [c["concept"] for c in doc["classes"]]
    assert ranks[0] == 0 and ranks[-1] == cfg.num_concepts - 1  # head to tail
    for c in doc["classes"]:
        assert all(c["names"][lang] for lang in LANGUAGES)
    for lang in LANGUAGES:
        assert doc["prompts"][lang] and all("{x}" in t for t in doc["prompts"][lang])
        names = [c["names"][lang] for c in doc["classes"]]
        assert len(set(names)) == len(names)
    zs = list(iter_shard(ev / "zeroshot.tar"))
    assert len(zs) == cfg.eval_num_classes * cfg.eval_images_per_class
    assert Counter(s.meta["label"] for s in zs) == {i: cfg.eval_images_per_class
                                                    for i in range(cfg.eval_num_classes)}
    concepts = world_concepts(cfg)
    for lang in LANGUAGES:
        pairs = list(iter_shard(ev / "retrieval" / f"{lang}.tar"))
        assert len(pairs) == cfg.eval_retrieval_pairs
        keys = {tuple(sorted(zip(s.meta["concepts"], s.meta["counts"]))) for s in pairs}
        assert len(keys) == len(pairs)  # one right image per caption
        for s in pairs:
            assert s.meta["language"] == lang and not s.meta["is_noise"]
            assert all(concepts[c].names[lang] in s.text for c in s.meta["concepts"])


def test_concepts_have_names_and_images():
    cands = candidate_emoji()
    assert len(cands) > 1000
    cfg = EmojiWorldConfig()
    concepts = world_concepts(cfg)
    assert len(concepts) == 300 and [c.id for c in concepts] == list(range(300))
    assert all(Path(c.png).is_file() and all(c.names[lang] for lang in LANGUAGES) for c in concepts)
    with pytest.raises(ValueError, match="only"):
        world_concepts(EmojiWorldConfig(num_concepts=len(cands) + 1))


def test_config_validation():
    with pytest.raises(ValueError):
        EmojiWorldConfig(languages=["en", "xx"])
    with pytest.raises(ValueError):
        EmojiWorldConfig(unknown_field=1)
    with pytest.raises(ValueError, match="english_share"):
        EmojiWorldConfig(languages=["ja"], english_share=0.3)
    with pytest.raises(ValueError, match="eval_num_classes"):
        EmojiWorldConfig(num_concepts=5, eval_num_classes=10)


def test_caption_text_helpers():
    assert clean_name(":cat_face:") == "cat face"
    assert join_names(["a"], "en") == "a"
    assert join_names(["a", "b", "c"], "en") == "a, b and c"
    assert join_names(["猫", "犬"], "ja") == "猫と犬"
    assert join_names(["고양이", "개"], "ko") == "고양이와 개"   # vowel ending
    assert join_names(["얼굴", "개"], "ko") == "얼굴과 개"       # consonant (batchim) ending
    assert join_names(["a", "b", "c"], "ar") == "a، b و c"
    assert count_phrase("cat face", 3, "en") == "3 cat face"
    assert count_phrase("猫脸", 2, "zh") == "猫脸 × 2"
    assert count_phrase("cat face", 1, "en") == "cat face"


def test_lexicons(tmp_path):
    paths = write_lexicons(tmp_path)
    assert set(paths) == set(LANGUAGES)
    en = (tmp_path / "en.txt").read_text(encoding="utf-8").splitlines()
    zh = (tmp_path / "zh.txt").read_text(encoding="utf-8").splitlines()
    assert "cat face" in en and "猫脸" in zh and len(en) > 1000
    assert all(line and ":" != line[0] and "_" not in line for line in en)
    assert en == sorted(set(en))


def test_cli_flags_map_onto_config(tmp_path):
    import argparse

    from clipscale.cli import data as cli_data
    from clipscale.config import ConfigError

    parser = argparse.ArgumentParser()
    cli_data.register(parser.add_subparsers(dest="verb"))
    base = tmp_path / "base.yaml"
    base.write_text("num_samples: 77\nzipf_exponent: 1.3\n", encoding="utf-8")
    args = parser.parse_args(["data", "emoji-world", "--out", str(tmp_path), "--config", str(base),
                              "--zipf-exponent", "0.8", "--english-share", "0.2",
                              "--languages", "en,ja,ko", "--image-format", "png"])
    cfg = cli_data.config_from_args(args)
    assert (cfg.num_samples, cfg.zipf_exponent, cfg.english_share) == (77, 0.8, 0.2)
    assert cfg.languages == ["en", "ja", "ko"] and cfg.image_format == "png"
    mix_args = parser.parse_args(["data", "emoji-world", "--out", "x", "--language-mix", "en=1,ja=3"])
    assert cli_data.config_from_args(mix_args).mix() == pytest.approx({**{k: 0.0 for k in LANGUAGES},
                                                                       "en": 0.25, "ja": 0.75})
    bad = parser.parse_args(["data", "emoji-world", "--out", "x", "--noise-share", "2"])
    with pytest.raises(ConfigError, match="noise_share"):
        cli_data.config_from_args(bad)
