"""The driver side of a training run: check inputs, prepare the tokenizer, build the run
contract and the Ray Data streams, and fit a ``TorchTrainer``. Everything that can be wrong with
the inputs fails here, before a worker starts."""
from __future__ import annotations

import json

from clipscale import storage
from clipscale.config import ConfigError, RunConfig
from clipscale.data.shards import list_shards
from clipscale.ray_setup import init_ray
from clipscale.run_inputs import check_storage, data_summary, store_tokenizer, wants_gpu
from clipscale.train import preemption
from clipscale.train.contract import RunContract


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


def check_fresh_or_resume(cfg: RunConfig, resume: bool) -> None:
    marker = storage.join(cfg.run_dir, "run_info.json")
    if storage.exists(marker) and not resume:
        raise ConfigError(f"run {cfg.run_dir} exists; pass --resume to continue it or choose another name")
    if resume and not storage.exists(marker):
        raise ConfigError(f"--resume: no run at {cfg.run_dir}")


def prepare(cfg: RunConfig, resume: bool = False) -> RunContract:
    """All driver-side checks and files; returns the run contract the workers receive. The run
    files (run_info.json, run_config.json, tokenizer.model) live in the run folder on the run's
    storage, so a run restarted on another node finds them."""
    check_storage(cfg)
    check_fresh_or_resume(cfg, resume)
    shards = list_shards(cfg.data.train_shards)
    if cfg.eval.eval_dir and not storage.is_dir(cfg.eval.eval_dir):
        raise ConfigError(f"eval.eval_dir: {cfg.eval.eval_dir} is not a folder")
    if cfg.eval.suites:  # h11-eval: a malformed suite is refused here, before workers start
        from clipscale.evaluation.suite_readers import check_suites
        check_suites(cfg.eval.suites)
    storage.makedirs(cfg.run_dir)
    info_file = storage.join(cfg.run_dir, "run_info.json")
    if storage.exists(info_file):
        contract = RunContract.from_record(cfg, json.loads(storage.read_text(info_file)), shards)
    else:
        captions, pool_counts = data_summary(shards, cfg.tokenizer.train_samples)
        rates, mix = run_mix(cfg, pool_counts)
        tok_path = prepare_tokenizer(cfg, captions)
        from clipscale.text.tokenizer import load_tokenizer
        from clipscale.train.online_stream import online_epochs
        contract = RunContract.from_record(cfg, {"run_id": cfg.name, "tokenizer_path": tok_path,
                                                 "vocab_size": load_tokenizer(tok_path).vocab_size,
                                                 "keep_rates": rates, **mix,
                                                 "online_epochs": online_epochs(shards, cfg)}, shards)
        storage.write_text(storage.join(cfg.run_dir, "run_config.json"), cfg.model_dump_json(indent=1))
        storage.write_text(info_file, json.dumps(contract.record(), indent=1))  # last: it marks the run as started
    if not storage.is_file(contract.tokenizer_path):
        raise ConfigError(f"tokenizer {contract.tokenizer_path} is missing")
    return contract


def stage_decode(contract: RunContract, stage: int) -> dict:
    """The decoding settings of one stage's stream (``train.data.train_dataset``'s keywords)."""
    from clipscale.train.plan import model_spec

    cfg = contract.run
    st, ctx = cfg.stages[stage], model_spec(cfg).text.context_length
    return dict(tokenizer_path=contract.tokenizer_path, image_size=st.image_size, context_length=ctx,
                counter_name=contract.counter_name, read_parallelism=cfg.data.read_parallelism,
                keep_rates=contract.keep_rates, filter_seed=cfg.train.seed,
                syntax_tokens=(st.text_tokens or ctx) if st.text_reduction == "syntax" else None,
                online_epochs=contract.online_epochs, online_seed=cfg.train.seed,
                curation_counter=contract.curation_counter_name)


def stage_dataset(contract: RunContract, stage: int):
    """One stage's lazy Ray Dataset of decoded rows, with the cluster's run counters created."""
    from clipscale.train.counters import run_counters
    from clipscale.train.data import train_dataset

    run_counters()
    return train_dataset(list(contract.shards), **stage_decode(contract, stage))


def ordered_data_context() -> None:
    """Ray Data's context in a process that streams training rows: deterministic order through
    read, decode and the split (a resumed run replays the same batches), and no progress bars
    (the split coordinator's bars interleave with the workers' log lines; the loop prints progress)."""
    import ray.data

    data_ctx = ray.data.DataContext.get_current()
    data_ctx.execution_options.preserve_order = True
    data_ctx.enable_progress_bars = False


def build_trainer(contract: RunContract, callbacks: list | None = None):
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig as RayRunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from clipscale.train.worker import CONTRACT_KEY, train_loop_per_worker

    cfg = contract.run
    ordered_data_context()
    datasets = {f"train_{i}": stage_dataset(contract, i) for i in range(len(cfg.stages))}
    if cfg.data.cache:  # decoded once, here; every epoch of every worker reads the stored rows
        datasets = {k: ds.materialize() for k, ds in datasets.items()}
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={CONTRACT_KEY: contract.for_workers()},
        scaling_config=ScalingConfig(num_workers=cfg.train.num_workers, use_gpu=wants_gpu(cfg),
                                     resources_per_worker={"CPU": cfg.train.cpus_per_worker},
                                     placement_strategy=cfg.train.placement_strategy),
        # a URI is handed to Ray as is: every worker uploads its checkpoint shard there
        run_config=RayRunConfig(name=cfg.name, storage_path=storage.absolute(cfg.output_dir),
                                checkpoint_config=CheckpointConfig(num_to_keep=cfg.train.keep_checkpoints),
                                # max_failures restarts the worker group from the last checkpoint
                                # after a lost worker or node. A non-finite loss is not such a
                                # failure: the workers write a `failed` row and return normally
                                # (loop.run), because a restart replays the same batches from the
                                # same checkpoint and would diverge again, max_failures times over.
                                # run_failure() reads it back from the result.
                                failure_config=FailureConfig(max_failures=cfg.train.max_failures),
                                callbacks=callbacks or None,
                                # Train's info lines (resources requested, worker group started,
                                # each checkpoint) stay in its system log files, off the console
                                logging_config=LoggingConfig(log_level="WARNING")),
        datasets=datasets,
    )


def run_failure(result) -> str | None:
    """Why a fitted run did not finish: Ray's error, or the workers' ``failed`` report (a
    non-finite loss); None for a finished run."""
    if result.error:
        return str(result.error)
    metrics = result.metrics or {}
    if metrics.get("status") == "failed":
        return metrics.get("failure", "the run reported status failed")
    return None


def train(cfg: RunConfig, resume: bool = False):
    """Run (or resume) one training run to the end; returns Ray's ``Result`` (see ``run_failure``)."""
    preemption.clear_notice(cfg.run_dir)  # the notice that stopped it last time
    contract = prepare(cfg, resume)
    init_ray(use_gpu=wants_gpu(cfg))
    trainer = build_trainer(contract)
    # SIGTERM (a spot/preemptible node's notice): the workers checkpoint and stop, then exit 143
    preemption.install_driver_handler([cfg.run_dir], cfg.train.preemption_grace_s)
    result = trainer.fit()
    preemption.exit_if_stopped(cfg.run_dir, "clipscale train <config> --resume")
    return result
