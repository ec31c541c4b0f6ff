"""The training data stream: shards -> Ray Data (read, decode, resize, tokenize) -> workers.

One Ray Data task per shard reads the tar (our reader, see data/shards.py for why not
``read_webdataset``), decodes and resizes images and tokenizes captions, and yields blocks of
``block_rows`` rows, so memory stays bounded by a few blocks whatever the pool size. Images
travel as uint8 (4x smaller than float); normalisation happens on the worker.

Bad samples (corrupt image, missing or undecodable caption) are dropped here and counted under
the run's name in the cluster's run counters (train/counters.py), which rank 0 reads when it
logs. They are dropped before the split so every worker receives the same number of rows per
epoch (``equal=True``) and workers stay in lock-step for the gathered loss.
"""
from __future__ import annotations

import collections
import functools
from typing import Iterator

import numpy as np
import ray

from clipscale.data.shards import ShardError, iter_shard
from clipscale.ray_setup import DECODE_TASK_CPUS
from clipscale.train.counters import add_skips


@functools.lru_cache(maxsize=2)
def _tokenizer(path: str):
    # Loaded once per Ray worker process, not per shard.
    from clipscale.text.tokenizer import load_tokenizer
    return load_tokenizer(path)


def decode_shard(batch: dict, *, tokenizer_path: str, image_size: int, context_length: int,
                 block_rows: int, counter_name: str, keep_rates: dict | None = None,
                 filter_seed: int = 0, syntax_tokens: int | None = None, online_seed: int | None = None,
                 curation_counter: str | None = None) -> Iterator[dict]:
    """Ray Data UDF over a batch of one shard path: yields decoded, tokenized blocks.

    ``keep_rates`` (language -> keep probability, see train/language_mix.py) selects the run's
    language mix; ``syntax_tokens`` applies the syntax text reduction to the raw caption (it
    needs words, which only exist before tokenization). ``online_seed``: the batch's rows carry
    a curation ``epoch`` and online-mode samples are drawn for it (train/online_stream.py)."""
    from clipscale.data.images import ImageDecodeError, decode_image
    from clipscale.text.syntax import syntax_reduce
    from clipscale.train.language_mix import keeps
    from clipscale.train.online_curation import is_online_sample
    from clipscale.train.online_stream import EpochDraw

    tok = _tokenizer(tokenizer_path)

    def piece_counts(words: list[str]) -> list[int]:
        return [len(ids) for ids in tok.sp.EncodeAsIds(words)]
    skipped: collections.Counter = collections.Counter()
    epochs = batch["epoch"] if online_seed is not None else [None] * len(batch["path"])
    for path, epoch in zip(batch["path"], epochs):
        keys, images, texts = [], [], []
        draw = None if online_seed is None else EpochDraw(online_seed, int(epoch))  # online curation hook

        def flush():
            tokens = tok.encode_ids(texts, context_length).astype(np.int32)
            out = {"key": np.array(keys), "image": np.stack(images), "tokens": tokens}
            if draw is not None:
                out["curation_epoch"] = np.full(len(keys), draw.epoch, dtype=np.int64)
            keys.clear(), images.clear(), texts.clear()
            return out

        try:
            for s in iter_shard(path):
                if s.problems and ("no_image" in s.problems or s.text is None):
                    skipped.update(p for p in s.problems if p != "bad_json")
                    continue
                if not s.text.strip():
                    skipped["empty_caption"] += 1
                    continue
                language, text = s.meta.get("language", "unknown"), s.text
                if draw is not None and is_online_sample(s.meta):
                    drawn = draw.caption(s.key, s.text, s.meta)  # this epoch's caption, or sits it out
                    if drawn is None:
                        continue
                    text, language = drawn
                if keep_rates is not None and not keeps(s.key, keep_rates.get(language, 0.0), filter_seed):
                    continue  # outside the run's language mix: not a bad sample, not counted
                try:
                    img = decode_image(s.image, image_size)
                except ImageDecodeError:
                    skipped["corrupt_image"] += 1
                    continue
                keys.append(s.key)
                images.append(img)
                texts.append(text if syntax_tokens is None else
                             syntax_reduce(text, language, syntax_tokens - 2, piece_counts))
                if len(keys) == block_rows:
                    yield flush()
        except ShardError:
            # Shards are checked before workers start; a shard that breaks mid-run is counted.
            skipped["unreadable_shard"] += 1
        if keys:
            yield flush()
        if draw is not None:
            draw.report(curation_counter, str(path))
    if skipped:
        add_skips(counter_name, skipped)


def train_dataset(shards: list[str], *, tokenizer_path: str, image_size: int, context_length: int,
                  counter_name: str, read_parallelism: int, block_rows: int = 256,
                  keep_rates: dict | None = None, filter_seed: int = 0,
                  syntax_tokens: int | None = None, online_epochs: int | None = None,
                  online_seed: int = 0, curation_counter: str | None = None):
    """A lazy Ray Dataset of decoded training rows. Order is deterministic (``preserve_order``
    is set by the launcher), so a resumed run sees the same batches as an uninterrupted one.
    ``online_epochs`` (online-mode shards): the pool ``online_epochs`` times over, each pass
    with its own curation epoch's draw (train/online_stream.py)."""
    items = ([{"path": p} for p in shards] if not online_epochs else
             [{"path": p, "epoch": e} for e in range(online_epochs) for p in shards])
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    return ds.map_batches(
        decode_shard,
        batch_size=1,
        fn_kwargs=dict(tokenizer_path=tokenizer_path, image_size=image_size,
                       context_length=context_length, block_rows=block_rows,
                       counter_name=counter_name, keep_rates=keep_rates,
                       filter_seed=filter_seed, syntax_tokens=syntax_tokens,
                       online_seed=online_seed if online_epochs else None, curation_counter=curation_counter),
        compute=ray.data.TaskPoolStrategy(size=read_parallelism),
        num_cpus=DECODE_TASK_CPUS,
    )
