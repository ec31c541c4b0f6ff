"""SentencePiece tokenizer: training on shards, reserved ids, batch encoding, missing files."""
from __future__ import annotations

import pytest
import torch

from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
from clipscale.data.shards import iter_shard, list_shards
from clipscale.text.tokenizer import (EOT_ID, PAD_ID, SOT_ID, TokenizerNotFoundError,
                                      fit_character_coverage, load_tokenizer, tokenizer_for_run,
                                      train_tokenizer)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    cfg = EmojiWorldConfig(num_samples=800, samples_per_shard=400, num_concepts=40,
                           eval_num_classes=2, eval_images_per_class=1, eval_retrieval_pairs=2)
    generate_pool(cfg, d / "world", progress=False)
    path = train_tokenizer(d / "world" / "pool", d / "tok.model", vocab_size=700)
    captions = [s.text for p in list_shards(d / "world" / "pool") for s in iter_shard(p)]
    return d, path, captions


def test_reserved_ids_and_vocab(trained):
    _, path, _ = trained
    tok = load_tokenizer(path)
    assert (tok.sp.pad_id(), tok.sp.unk_id(), tok.sp.bos_id(), tok.sp.eos_id()) == (0, 1, 2, 3)
    assert 300 < tok.vocab_size <= 700


def test_encode_batch_shapes_and_round_trip(trained):
    _, path, captions = trained
    tok = load_tokenizer(path)
    texts = [c for c in captions[:64]]
    x = tok.encode_batch(texts, 77)
    assert x.dtype == torch.long and tuple(x.shape) == (64, 77)
    for row, text in zip(x.tolist(), texts):
        assert row[0] == SOT_ID
        n = row.index(EOT_ID)
        assert row.count(EOT_ID) == 1 and all(t == PAD_ID for t in row[n + 1:])
        assert PAD_ID not in row[:n + 1]
        assert tok.decode(row) == text  # lossless: byte fallback covers every character
    cjk = [c for c in captions if any("\u3040" <= ch <= "\u9fff" for ch in c)][:5]
    assert cjk and [tok.decode(r) for r in tok.encode_batch(cjk, 77).tolist()] == cjk


def test_truncation_keeps_eot_last(trained):
    _, path, _ = trained
    tok = load_tokenizer(path)
    text = "an illustration of " + " and ".join(["cat face"] * 20)
    full = tok.encode(text)
    x = tok.encode_batch([text, "a"], 8)
    assert x[0].tolist() == [SOT_ID] + full[:6] + [EOT_ID]
    assert x[1, 0] == SOT_ID and EOT_ID in x[1].tolist()
    with pytest.raises(ValueError, match="context_length"):
        tok.encode_batch(["a"], 1)


def test_training_is_deterministic_and_accepts_caption_lists(trained, tmp_path):
    d, path, captions = trained
    again = train_tokenizer(captions, tmp_path / "again.model", vocab_size=700)
    assert again.read_bytes() == path.read_bytes()


def test_missing_or_bad_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(TokenizerNotFoundError, match="tokenizer not found.*tokenizer train"):
        load_tokenizer(tmp_path / "nope.model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(TokenizerNotFoundError, match="not a SentencePiece model"):
        load_tokenizer(bad)
    with pytest.raises(ValueError, match="no captions"):
        train_tokenizer(["", "  "], tmp_path / "x.model")
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["a b c"], tmp_path / "x.model", vocab_size=200)


def test_run_copy_is_reused(trained, tmp_path):
    _, path, captions = trained
    run = tmp_path / "run"
    dest = tokenizer_for_run(run, path)
    assert dest.read_bytes() == path.read_bytes()
    other = train_tokenizer(captions[:300], tmp_path / "other.model", vocab_size=500)
    assert other.read_bytes() != path.read_bytes()
    # a resumed run keeps its own copy, whatever the source now is
    assert tokenizer_for_run(run, other).read_bytes() == path.read_bytes()
    with pytest.raises(TokenizerNotFoundError):
        tokenizer_for_run(tmp_path / "run2", tmp_path / "missing.model")


def test_fit_character_coverage():
    caps = ["aaaaaaaab", "aaaaaaaac"]  # a: 16, b: 1, c: 1 of 18
    assert fit_character_coverage(caps, 3, 0.9995) == 0.9995
    with pytest.raises(ValueError, match="vocabulary too small"):  # 17/18 < SentencePiece's 0.98
        fit_character_coverage(caps, 2, 0.9995)
    many = ["".join(chr(0x4E00 + i) for i in range(500))]
    with pytest.raises(ValueError, match="vocabulary too small"):
        fit_character_coverage(many, 100, 0.9995)
    text = ["x" * 990 + "".join(chr(0x4E00 + i) for i in range(10))]
    cov = fit_character_coverage(text, 6, 0.9995)  # keep x + 5 ideographs: 995/1000
    assert cov == pytest.approx(0.995, rel=1e-6) and cov < 0.995
