"""The driver side of a training run: check inputs, prepare the tokenizer, build the Ray Data
streams, and fit a ``TorchTrainer``. Everything that can be wrong with the inputs fails here,
before a worker starts."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from clipscale.config import ConfigError, RunConfig
from clipscale.data.shards import ShardError, iter_shard, list_shards
from clipscale.ray_setup import init_ray  # noqa: F401  (part of this module's API)


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


def prepare_tokenizer(cfg: RunConfig, captions: list[str]) -> str:
    """The run's tokenizer file: the configured one (copied into the run), the run's own from an
    earlier attempt (reused), or a new one trained on the training captions."""
    import shutil

    from clipscale.text.tokenizer import train_tokenizer

    dest = cfg.run_dir / "tokenizer.model"
    if cfg.tokenizer.path:
        if not Path(cfg.tokenizer.path).is_file():
            raise ConfigError(f"tokenizer.path: {cfg.tokenizer.path} does not exist")
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cfg.tokenizer.path, dest)
    elif not dest.exists():
        train_tokenizer(captions, dest, vocab_size=cfg.tokenizer.vocab_size)
    return str(dest)


def check_fresh_or_resume(cfg: RunConfig, resume: bool) -> None:
    marker = cfg.run_dir / "run_info.json"
    if marker.exists() and not resume:
        raise ConfigError(f"run {cfg.run_dir} exists; pass --resume to continue it or choose another name")
    if resume and not marker.exists():
        raise ConfigError(f"--resume: no run at {cfg.run_dir}")


def prepare(cfg: RunConfig, resume: bool = False) -> dict:
    """All driver-side checks and files; returns the ``info`` dict the workers receive."""
    check_fresh_or_resume(cfg, resume)
    shards = list_shards(cfg.data.train_shards)
    if cfg.eval.eval_dir and not Path(cfg.eval.eval_dir).is_dir():
        raise ConfigError(f"eval.eval_dir: {cfg.eval.eval_dir} is not a folder")
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    info_file = cfg.run_dir / "run_info.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
    else:
        captions, pool_counts = data_summary(shards, cfg.tokenizer.train_samples)
        rates, mix = run_mix(cfg, pool_counts)
        tok_path = prepare_tokenizer(cfg, captions)
        from clipscale.text.tokenizer import load_tokenizer
        info = {"run_id": cfg.name, "tokenizer_path": tok_path,
                "vocab_size": load_tokenizer(tok_path).vocab_size, "keep_rates": rates, **mix}
        (cfg.run_dir / "run_config.json").write_text(cfg.model_dump_json(indent=1))
        info_file.write_text(json.dumps(info, indent=1))
    if not Path(info["tokenizer_path"]).is_file():
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
        run_config=RayRunConfig(name=cfg.name, storage_path=str(Path(cfg.output_dir).resolve()),
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
