"""The driver side of a training run: check inputs, prepare the tokenizer, build the Ray Data
streams, and fit a ``TorchTrainer``. Everything that can be wrong with the inputs fails here,
before a worker starts."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from clipscale import storage
from clipscale.config import ConfigError, RunConfig
from clipscale.data.shards import ShardError, iter_shard, list_shards
from clipscale.ray_setup import init_ray


def data_summary(shards: list[str], limit: int) -> tuple[list[str], dict]:
    """Read up to ``limit`` captions (for the tokenizer) and the caption count per language."""
    captions, langs = [], Counter()
    for path in shards:
        for s in iter_shard(path):
            if s.text and s.text.strip():
                captions.append(s.text)
                langs[s.meta.get("language", "unknown")] += 1
            if len(captions) >= limit:
                break
        if len(captions) >= limit:
            break
    if not captions:
        raise ShardError(shards[0], "no readable caption in the training shards")
    return captions, dict(langs)


def run_mix(cfg: RunConfig, pool_counts: dict) -> tuple[dict | None, dict]:
    """The run's keep rate per language and the mix its rows report: the pool's measured mix,
    or the expected mix after the ``data.languages`` / ``data.english_share`` filter."""
    from clipscale.train.language_mix import keep_rates, mix_after

    rates = None
    if cfg.data.languages is not None or cfg.data.english_share is not None:
        try:
            rates = keep_rates(pool_counts, cfg.data.languages, cfg.data.english_share)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    shares = mix_after(pool_counts, rates or {})
    return rates, {"languages": ",".join(sorted(shares)), "english_share": shares.get("en", 0.0)}


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


def prepare_tokenizer(cfg: RunConfig, captions: list[str]) -> str:
    """The run's tokenizer file: the configured one (copied into the run), the run's own from an
    earlier attempt (reused), or a new one trained on the training captions. A location every
    node reads (a URI when the run is on object storage; workers fetch a local copy)."""
    dest = storage.join(cfg.run_dir, "tokenizer.model")
    if cfg.tokenizer.path:
        if not storage.is_file(cfg.tokenizer.path):
            raise ConfigError(f"tokenizer.path: {cfg.tokenizer.path} does not exist")
        if not storage.exists(dest):
            storage.write_bytes(dest, storage.read_bytes(cfg.tokenizer.path))
    elif not storage.exists(dest):
        store_tokenizer(captions, dest, cfg.tokenizer.vocab_size)
    return dest


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
    check_locations([("output_dir", cfg.output_dir), ("results_dir", cfg.results_dir),
                     ("tokenizer.path", cfg.tokenizer.path), ("eval.eval_dir", cfg.eval.eval_dir)])


def check_fresh_or_resume(cfg: RunConfig, resume: bool) -> None:
    marker = storage.join(cfg.run_dir, "run_info.json")
    if storage.exists(marker) and not resume:
        raise ConfigError(f"run {cfg.run_dir} exists; pass --resume to continue it or choose another name")
    if resume and not storage.exists(marker):
        raise ConfigError(f"--resume: no run at {cfg.run_dir}")


def prepare(cfg: RunConfig, resume: bool = False) -> dict:
    """All driver-side checks and files; returns the ``info`` dict the workers receive. The run
    files (run_info.json, run_config.json, tokenizer.model) live in the run folder on the run's
    storage, so a run restarted on another node finds them."""
    check_storage(cfg)
    check_fresh_or_resume(cfg, resume)
    shards = list_shards(cfg.data.train_shards)
    if cfg.eval.eval_dir and not storage.is_dir(cfg.eval.eval_dir):
        raise ConfigError(f"eval.eval_dir: {cfg.eval.eval_dir} is not a folder")
    storage.makedirs(cfg.run_dir)
    info_file = storage.join(cfg.run_dir, "run_info.json")
    if storage.exists(info_file):
        info = json.loads(storage.read_text(info_file))
    else:
        captions, pool_counts = data_summary(shards, cfg.tokenizer.train_samples)
        rates, mix = run_mix(cfg, pool_counts)
        tok_path = prepare_tokenizer(cfg, captions)
        from clipscale.text.tokenizer import load_tokenizer
        info = {"run_id": cfg.name, "tokenizer_path": tok_path,
                "vocab_size": load_tokenizer(tok_path).vocab_size, "keep_rates": rates, **mix}
        storage.write_text(storage.join(cfg.run_dir, "run_config.json"), cfg.model_dump_json(indent=1))
        storage.write_text(info_file, json.dumps(info, indent=1))  # last: it marks the run as started
    if not storage.is_file(info["tokenizer_path"]):
        raise ConfigError(f"tokenizer {info['tokenizer_path']} is missing")
    info["shards"] = shards
    info["counter_name"] = f"skips-{cfg.name}"
    return info


def build_trainer(cfg: RunConfig, info: dict, callbacks: list | None = None):
    import ray.data
    from ray.train import CheckpointConfig, FailureConfig, RunConfig as RayRunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from clipscale.train.data import skip_counter, train_dataset
    from clipscale.train.loop import train_loop_per_worker
    from clipscale.train.plan import model_spec

    use_gpu = wants_gpu(cfg)
    # Deterministic order through read, decode and the split: a resumed run replays the same batches.
    data_ctx = ray.data.DataContext.get_current()
    data_ctx.execution_options.preserve_order = True
    # The split coordinator's bars interleave with the workers' log lines; the loop prints progress.
    data_ctx.enable_progress_bars = False
    skip_counter(info["counter_name"])
    ctx = model_spec(cfg).text.context_length
    datasets = {f"train_{i}": train_dataset(info["shards"], tokenizer_path=info["tokenizer_path"],
                                            image_size=st.image_size, context_length=ctx,
                                            counter_name=info["counter_name"],
                                            read_parallelism=cfg.data.read_parallelism,
                                            keep_rates=info.get("keep_rates"), filter_seed=cfg.train.seed,
                                            syntax_tokens=(st.text_tokens or ctx) if st.text_reduction == "syntax" else None)
                for i, st in enumerate(cfg.stages)}
    worker_info = {k: v for k, v in info.items() if k != "shards"}
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"run": cfg.model_dump(mode="json"), "info": worker_info},
        scaling_config=ScalingConfig(num_workers=cfg.train.num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cfg.train.cpus_per_worker},
                                     placement_strategy=cfg.train.placement_strategy),
        # a URI is handed to Ray as is: every worker uploads its checkpoint shard there
        run_config=RayRunConfig(name=cfg.name, storage_path=storage.absolute(cfg.output_dir),
                                checkpoint_config=CheckpointConfig(num_to_keep=cfg.train.keep_checkpoints),
                                failure_config=FailureConfig(max_failures=cfg.train.max_failures),
                                callbacks=callbacks or None),
        datasets=datasets,
    )


def train(cfg: RunConfig, resume: bool = False):
    """Run (or resume) one training run to the end; returns Ray's ``Result``."""
    info = prepare(cfg, resume)
    init_ray(use_gpu=wants_gpu(cfg))
    trainer = build_trainer(cfg, info)
    return trainer.fit()


def wants_gpu(cfg: RunConfig) -> bool:
    """``train.use_gpu``, with ``auto`` meaning: this machine has a CUDA device."""
    if cfg.train.use_gpu != "auto":
        return bool(cfg.train.use_gpu)
    import torch
    return torch.cuda.is_available()
