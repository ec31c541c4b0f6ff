"""Driver-side checks and files shared by a training run and a sweep: where the run may use a
GPU, whether its storage locations are reachable, what its training shards hold, and the trained
tokenizer. Everything here runs before Ray starts a worker, so bad input fails with the config
field named."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from clipscale import storage
from clipscale.config import ConfigError, RunConfig
from clipscale.data.shards import ShardError, iter_shard


def wants_gpu(cfg: RunConfig) -> bool:
    """``train.use_gpu``, with ``auto`` meaning: this machine has a CUDA device."""
    if cfg.train.use_gpu != "auto":
        return bool(cfg.train.use_gpu)
    import torch
    return torch.cuda.is_available()


def check_locations(fields: list[tuple[str, str | None]]) -> None:
    """Reach each (config field, location) once (URIs only), so a wrong scheme, missing
    credentials or an unreachable bucket fail here with the field named, before Ray starts workers."""
    for field, loc in fields:
        if loc and storage.is_uri(loc):
            try:
                storage.check(loc, field)
            except storage.StorageError as e:
                raise ConfigError(str(e)) from None


def check_storage(cfg: RunConfig) -> None:
    """Every storage location a run config names."""
    check_locations([("output_dir", cfg.output_dir), ("results_dir", cfg.results_dir),
                     ("tokenizer.path", cfg.tokenizer.path), ("eval.eval_dir", cfg.eval.eval_dir)])


def online_extra_captions(meta: dict) -> list[str]:
    """The further candidate captions of an online-mode curated sample (none otherwise)."""
    from clipscale.train.online_curation import is_online_sample

    if not is_online_sample(meta):
        return []
    extra = meta.get(meta["curation"].get("captions_field", "captions"))
    return [c for c in extra if isinstance(c, str) and c.strip()] if isinstance(extra, list) else []


_SUMMARIES: dict[tuple, tuple[list[str], dict]] = {}  # see data_summary
_SUMMARIES_KEPT = 4


def local_shard_identity(shards: list[str]) -> tuple | None:
    """Each shard's path, size and modification time; None when a shard is a URI (not cached)."""
    if any(storage.is_uri(p) for p in shards):
        return None
    try:
        return tuple((p, st.st_size, st.st_mtime_ns) for p in shards for st in [os.stat(p)])
    except OSError:
        return None


def data_summary(shards: list[str], limit: int) -> tuple[list[str], dict]:
    """Read up to ``limit`` captions (for the tokenizer) and the caption count per language.

    Remembered per process for local shards that have not changed (same paths, sizes and
    modification times): a packed sweep's lane prepares every trial on the same shards, and
    reading them all again took ~3 s a trial for the demo's 25k pairs (docs/throughput.md)."""
    key = local_shard_identity(shards)
    if key is not None and (key, limit) in _SUMMARIES:
        captions, langs = _SUMMARIES[(key, limit)]
        return list(captions), dict(langs)
    captions, langs = [], Counter()
    for path in shards:
        for s in iter_shard(path):
            if s.text and s.text.strip():
                captions.append(s.text)
                langs[s.meta.get("language", "unknown")] += 1
                captions.extend(online_extra_captions(s.meta))  # online curation: they train too
            if len(captions) >= limit:
                break
        if len(captions) >= limit:
            break
    if not captions:
        raise ShardError(shards[0], "no readable caption in the training shards")
    if key is not None:
        while len(_SUMMARIES) >= _SUMMARIES_KEPT:
            _SUMMARIES.pop(next(iter(_SUMMARIES)))
        _SUMMARIES[(key, limit)] = (list(captions), dict(langs))
    return captions, dict(langs)


def store_tokenizer(captions: list[str], dest: str, vocab_size: int) -> str:
    """Train a tokenizer on ``captions`` and write it to ``dest`` (a path or URI: trained in a
    local temp folder, then put whole)."""
    import tempfile

    from clipscale.text.tokenizer import train_tokenizer

    if not storage.is_uri(dest):
        return str(train_tokenizer(captions, dest, vocab_size=vocab_size))
    with tempfile.TemporaryDirectory(prefix="clipscale-tok-") as d:
        local = train_tokenizer(captions, Path(d) / "tokenizer.model", vocab_size=vocab_size)
        storage.write_bytes(dest, local.read_bytes())
    return dest
