"""Online curation consumed by the training stream (train/online_stream.py): the real Ray Data
stream of online-mode shards, drawn per epoch on the worker side and re-batched; kept
frequencies match the keep probabilities, a resumed stream replays the draw, and a real run's
rows carry the realised kept share per language."""
from __future__ import annotations

import io
import types
from collections import Counter

import numpy as np
import pytest
import ray
from PIL import Image
from scipy.stats import binomtest

from clipscale.config import build_run_config
from clipscale.data.shards import Sample, list_shards, write_tar
from clipscale.train.checkpoint import TrainState
from clipscale.train.counters import kept_share
from clipscale.train.online_curation import epoch_caption
from clipscale.train.online_stream import EpochDraw, OnlineCurationError, OnlineProgress, online_epochs

EPOCHS, MICRO, SEED = 12, 16, 5
# even keys: two matched captions (en 0.3, de 0.8); odd keys: only the first (en 0.6)
PROBS = {0: ([0.3, 0.8], ["en", "de"]), 1: ([0.6, 0.0], ["en", "de"])}


def jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), (i % 251, (7 * i) % 253, 90)).save(buf, format="JPEG")
    return buf.getvalue()


def online_sample(i: int) -> Sample:
    probs, langs = PROBS[i % 2]
    return Sample(key=f"k{i:04d}", image=jpeg(i), image_ext="jpg", text=f"a red cat number {i}",
                  meta={"language": "en", "captions": [f"eine rote katze nummer {i} zwei"],
                        "curation": {"keep_probs": probs, "languages": langs, "seed": 99,
                                     "captions_field": "captions"}})


@pytest.fixture(scope="module")
def online_pool(tmp_path_factory):
    from clipscale.ray_setup import init_ray
    from clipscale.text.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("online")
    (out / "pool").mkdir()
    samples = [online_sample(i) for i in range(400)]
    write_tar(out / "pool" / "000.tar", samples[:200])
    write_tar(out / "pool" / "001.tar", samples[200:])
    texts = [s.text for s in samples] + [s.meta["captions"][0] for s in samples]
    tok = train_tokenizer(texts * 3, out / "tok.model", vocab_size=128, byte_fallback=False)
    init_ray()
    yield {"dir": out, "samples": {s.key: s for s in samples}, "tok": str(tok)}
    ray.shutdown()


def stream_of(pool, state: TrainState, counter: str = "curation-test"):
    """The worker's stream outside Ray Train: the real dataset, stage_batches, the epoch tracker."""
    from clipscale.train.data import train_dataset
    from clipscale.train.worker import stage_batches

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    ds = train_dataset(list_shards(pool["dir"] / "pool"), tokenizer_path=pool["tok"], image_size=16,
                       context_length=16, counter_name="skips-online", read_parallelism=1,
                       online_epochs=EPOCHS, online_seed=SEED, curation_counter=counter)
    cfg = build_run_config({"data": {"train_shards": "x", "shuffle_buffer": 64},
                            "train": {"seed": SEED, "global_batch_size": MICRO, "num_workers": 1,
                                      "samples_seen": 100_000}})
    raw = stage_batches(state, 0, MICRO, types.SimpleNamespace(run=cfg), 0, shard=ds.iterator())
    return OnlineProgress(EPOCHS).track(raw, state)


def test_epoch_draw_counts_offered_and_kept_languages():
    draw = EpochDraw(SEED, 3)
    got = {f"s{i}": draw.caption(f"s{i}", "a", online_sample(0).meta) for i in range(2000)}
    want = {k: epoch_caption(k, "a", online_sample(0).meta, SEED, 3) for k in got}
    assert got == {k: (v[1], v[2]) if v else None for k, v in want.items()}
    assert sum(draw.offered.values()) == 2000 and sum(draw.kept.values()) == sum(v is not None for v in got.values())
    assert binomtest(draw.kept["de"], draw.offered["de"], 0.8).pvalue > 1e-3


def test_online_shards_are_detected_and_their_epochs_estimated(tmp_path):
    write_tar(tmp_path / "a.tar", [online_sample(i) for i in range(100)])
    write_tar(tmp_path / "b.tar", [Sample(key="x", image=jpeg(1), image_ext="jpg", text="t", meta={})])
    cfg = build_run_config({"data": {"train_shards": "x"}, "train": {"samples_seen": 1100, "global_batch_size": 10}})
    # 100 samples, expected kept 0.55 (even: (0.3+0.8)/2) and 0.6 (odd): 57.5 a pass
    assert online_epochs([str(tmp_path / "a.tar")], cfg) == -(-1.5 * 1100 // 57.5) + 1
    assert online_epochs([str(tmp_path / "b.tar")], cfg) is None
    given = cfg.model_copy(update={"data": cfg.data.model_copy(update={"online_epochs": 7})})
    assert online_epochs([str(tmp_path / "a.tar")], given) == 7


def test_a_second_pass_is_refused_naming_the_field():
    state = TrainState(epoch=1)
    with pytest.raises(OnlineCurationError, match="data.online_epochs"):
        next(OnlineProgress(4).track(iter([{"curation_epoch": np.array([3])}]), state))


@pytest.mark.slow
def test_the_stream_keeps_each_caption_at_its_keep_probability(online_pool):
    from clipscale.text.tokenizer import load_tokenizer

    tok = load_tokenizer(online_pool["tok"])
    samples = online_pool["samples"]
    state = TrainState()
    trained: dict[int, list] = {}
    with pytest.raises(OnlineCurationError, match="12 curation epochs are used up"):
        for batch in stream_of(online_pool, state, "curation-binomial"):  # to the end of the stream
            for key, tokens, epoch in zip(batch["key"], batch["tokens"], batch["curation_epoch"]):
                trained.setdefault(int(epoch), []).append((str(key), tokens))
    counts = Counter()
    for epoch in range(EPOCHS - 2):  # the stream's tail (< a batch, shuffled across the last two) is dropped
        want = {k: epoch_caption(k, s.text, s.meta, SEED, epoch) for k, s in samples.items()}
        got = [k for k, _ in trained[epoch]]
        # exactly the images the epoch's draw keeps, each on the caption it picked
        assert sorted(got) == sorted(k for k, v in want.items() if v is not None), epoch
        for key, tokens in trained[epoch]:
            assert np.array_equal(tokens, tok.encode_batch([want[key][1]], 16).numpy()[0])
            counts[(int(key[1:]) % 2, want[key][0])] += 1
    assert len({frozenset(k for k, _ in rows) for rows in trained.values()}) == EPOCHS  # a new draw each epoch
    n = (EPOCHS - 2) * 200  # draws per class of image
    for (cls, caption), p in {(0, 0): 0.5 * 0.3, (0, 1): 0.5 * 0.8, (1, 0): 0.6}.items():
        assert binomtest(counts[(cls, caption)], n, p).pvalue > 1e-3, (cls, caption, counts[(cls, caption)] / n)
    assert counts[(1, 1)] == 0
    # the counters' realised share of epoch 0 (every shard decoded) is the draw's own kept / offered
    share = kept_share("curation-binomial", 0)
    draw = EpochDraw(SEED, 0)
    for k, s in samples.items():
        draw.caption(k, s.text, s.meta)
    assert share == pytest.approx({lang: draw.kept[lang] / n for lang, n in draw.offered.items()})


@pytest.mark.slow
def test_a_resumed_stream_replays_the_draw(online_pool):
    state = TrainState()
    stream = stream_of(online_pool, state)
    seen, positions = [], []
    for _ in range(30):  # past the first curation epoch (about 14 micro-batches each)
        positions.append((state.epoch, state.batch_in_epoch))
        seen.append(list(next(stream)["key"]))
        state.batch_in_epoch += 1  # the loop's advance()
    for step in (7, 20):
        epoch, batch = positions[step]
        resumed = stream_of(online_pool, TrainState(epoch=epoch, batch_in_epoch=batch))
        assert [list(next(resumed)["key"]) for _ in range(5)] == seen[step:step + 5], step


@pytest.mark.slow
def test_a_run_on_online_shards_records_the_realised_kept_share_per_language(online_pool, tiny_pool, tmp_path):
    from clipscale.config import resolve_paths
    from clipscale.results import read_results
    from clipscale.train.launch import train

    cfg = resolve_paths(build_run_config({
        "name": "online", "output_dir": str(tmp_path),
        "data": {"train_shards": str(online_pool["dir"] / "pool"), "shuffle_buffer": 64, "read_parallelism": 1},
        "model": {"name": "tiny-s"}, "tokenizer": {"vocab_size": 512, "train_samples": 400},
        "stages": [{"image_size": 32, "text_tokens": 16}],
        "train": {"samples_seen": 768, "global_batch_size": 32, "lr": 2e-3, "warmup_samples": 64, "seed": SEED,
                  "zero_stage": 2, "num_workers": 2, "checkpoint_every_samples": 384},
        "eval": {"eval_dir": str(tiny_pool / "eval"), "every_samples": 384, "batch_size": 128},
        "logging": {"wandb_mode": "offline"}}), tmp_path)
    result = train(cfg)
    assert result.error is None
    df = read_results(tmp_path / "results").sort_values("samples_seen")
    assert list(df["samples_seen"]) == [384, 768] and df["status"].iloc[-1] == "finished"
    # about 230 images kept an epoch: the 768 samples span 4 curation epochs. The column is rank
    # 0's epoch, and Ray Data's split hands blocks to whichever rank asks first, so rank 0 may
    # have read more of the early epochs than rank 1: at 384 (192 rows each) it is in epoch 0
    # or later, and at 768 past epoch 0 in any split (384 rows > one epoch).
    epochs = df["curation_epoch"].tolist()
    assert epochs[-1] >= 1 and epochs[-1] > epochs[0] and df["curation_epoch"].is_monotonic_increasing
    # de captions are kept with 0.8; en ones with 0.3 (even keys) or 0.6 (odd keys, offered twice as often)
    assert df["kept_share_de"].between(0.6, 0.95).all() and df["kept_share_en"].between(0.3, 0.7).all()
