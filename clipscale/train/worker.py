"""The Ray Train edge of the loop: on each worker, build the DeepSpeed engine, the Ray Data
batch streams, the tracker and the evaluator from the run contract, restore the checkpoint, and
run ``loop.run``. Ray and DeepSpeed are touched only here and in ``engine.py``."""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from functools import partial
from typing import Callable

import ray.train
import torch

from clipscale.train import checkpoint as ckpt
from clipscale.train import commit, fork, preemption
from clipscale.train.attempts import record_attempt
from clipscale.train.batches import make_batch
from clipscale.train.cadence import Cadence
from clipscale.train.contract import RunContract
from clipscale.train.counters import skip_counts
from clipscale.train.engine import build_engine
from clipscale.train.loop import Loop, run
from clipscale.train.online_stream import OnlineProgress, WithKeptShare
from clipscale.train.plan import plan_run
from clipscale.train.prefetch import FirstItemEarly
from clipscale.train.schedule import lr_at
from clipscale.train.step import train_step
from clipscale.train.timing import PhaseTimes

CONTRACT_KEY = "contract"  # the one key of TorchTrainer's train_loop_config


def stage_batches(state: ckpt.TrainState, stage: int, micro: int, contract: RunContract, rank: int,
                  shard):
    """Endless batches of one stage's stream, epoch after epoch, starting at the checkpointed
    data position (epoch, batch_in_epoch). Ray Data's order is deterministic, so skipping the
    consumed batches of the epoch puts a resumed run exactly where the interrupted one was."""
    cfg = contract.run
    while True:
        skip, n = state.batch_in_epoch, 0
        seed = (cfg.train.seed * 1_000_003 + stage * 10_007 + state.epoch * 101 + rank) % 2**31
        for b in shard.iter_batches(batch_size=micro, drop_last=True, batch_format="numpy",
                                    local_shuffle_buffer_size=cfg.data.shuffle_buffer or None,
                                    local_shuffle_seed=seed if cfg.data.shuffle_buffer else None):
            n += 1
            if n <= skip:
                continue
            yield b
        if n == 0:
            raise RuntimeError(f"stage {stage}: the training data yielded no full batch of {micro} "
                               "rows per worker; add shards or lower train.global_batch_size")
        state.epoch += 1
        state.batch_in_epoch = 0


def step_function(cfg):
    """The optimizer step: plain, or with feature-caching accumulation (train/accumulation.py)."""
    if cfg.train.accumulation_steps > 1:
        from clipscale.train.accumulation import accumulated_step
        return partial(accumulated_step, steps=cfg.train.accumulation_steps, loss=cfg.train.loss)
    return partial(train_step, loss=cfg.train.loss)


def finite_on_every_rank(value: float, device) -> bool:
    """One flag all-reduced over the ranks: each rank's loss is its own rows' (train/loss.py),
    so a non-finite value can appear on one rank first, and every rank must stop together."""
    import torch.distributed as dist

    bad = torch.tensor([0.0 if math.isfinite(value) else 1.0], device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return bad.item() == 0.0


def publish_to_ray(payload: dict, folder: str | None, *, run_dir: str, rank: int, world: int,
                   fork_points=()) -> None:
    """Report to Ray (every rank); a checkpoint folder gets this rank's commit marker last
    (train/commit.py), and a full disk while Ray stores it is a clear error naming the run."""
    with commit.clear_write_errors(f"checkpoint at samples_seen {payload['samples_seen']}", run_dir):
        if folder:
            commit.write_marker(folder, rank, world, payload["samples_seen"])
            fork.keep_fork_copy(folder, run_dir, payload["samples_seen"], fork_points)  # a wsd trunk (train/fork.py)
        ray.train.report(payload, checkpoint=ray.train.Checkpoint.from_directory(folder) if folder else None)
    if folder:  # Ray has copied it to the storage path
        shutil.rmtree(folder, ignore_errors=True)


def step_marks(phases: PhaseTimes, start_samples: int):
    """A loop hook: marks the first and the last step and counts the samples trained."""
    def hook(loop: Loop, state: ckpt.TrainState, result) -> None:
        phases.mark("first_step")
        phases.mark("last_step", last=True)
        phases.samples = state.samples_seen - start_samples
    return hook


@dataclass(frozen=True)
class RunIO:
    """Where a run's batches come from and where its checkpoints go: Ray Train's dataset shards
    and checkpoints for a run of its own (``train_loop_per_worker``), the run folder and streams
    the worker opens itself for a trial of a packed sweep (train/lane.py)."""
    stream: Callable[[int], object]          # stage -> a source with Ray Data's ``iter_batches``
    restored: Callable[[], object]           # -> the checkpoint to resume from, or None
    publish: Callable[..., None]             # (payload, checkpoint folder or None); see Loop.publish


def ray_train_io(cfg) -> RunIO:
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    return RunIO(stream=lambda stage: ray.train.get_dataset_shard(f"train_{stage}"),
                 restored=lambda: commit.usable_checkpoint(ray.train.get_checkpoint(), cfg.run_dir, rank),
                 publish=partial(publish_to_ray, run_dir=cfg.run_dir, rank=rank, world=world,
                                 fork_points=cfg.train.fork_points))


def train_loop_per_worker(loop_config: dict) -> None:
    phases = PhaseTimes()  # where this attempt's time goes (train/timing.py); rank 0 writes it
    phases.mark("worker_start")
    contract: RunContract = loop_config[CONTRACT_KEY]
    train_run(contract, ray_train_io(contract.run), phases)


def train_run(contract: RunContract, io: RunIO, phases: PhaseTimes) -> str:
    """Train (or resume) one run to its end on this worker; returns the loop's status."""
    cfg = contract.run
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    # One intra-op thread per reserved CPU: torch's default (all cores) oversubscribes a node
    # whose cores are shared by several workers and Ray Data, and then runs many times slower.
    torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    rng = ckpt.WorkerRng.seeded(cfg.train.seed, rank)
    state = ckpt.TrainState()
    # resume only from a complete checkpoint: an incomplete latest one falls back to the one before
    restored = io.restored()
    if restored is None and cfg.train.init_from:  # a cooldown fork's first start (train/fork.py)
        restored = fork.init_checkpoint(cfg.train.init_from)
    micro0 = cfg.stage_batch_size(0) // world
    # A fresh run starts its first stream now, while the engine and the evaluator are built
    # (train/prefetch.py); the same batches in the same order as without it.
    early = None if restored else FirstItemEarly(
        stage_batches(state, 0, micro0, contract, rank, shard=io.stream(0)))

    engine, precision, params = build_engine(cfg, contract.vocab_size, world)
    phases.mark("engine_built")
    plan = plan_run(cfg)
    if restored:
        with restored.as_directory() as d:
            state = ckpt.restore(engine, d, rank, rng)
        print(f"[clipscale] rank {rank}: resumed at step {state.step}, samples_seen {state.samples_seen}")
    record_attempt(cfg.run_dir, rank, world, state.step, state.samples_seen)

    tracker = None
    if rank == 0:
        from clipscale.train.tracking import Tracker
        tracker = Tracker.for_run(contract, {"params": params, "precision": precision, "world_size": world})
    evaluator = None
    if cfg.eval.eval_dir or cfg.eval.suites:
        from clipscale.train.evaluator import Evaluator
        evaluator = Evaluator(cfg, contract.tokenizer_path, engine.device, precision)
    progress = OnlineProgress(contract.online_epochs)
    if contract.online_epochs and evaluator is not None:  # rows get the realised kept shares
        evaluator = WithKeptShare(evaluator, progress, contract.curation_counter_name)

    def batches(state: ckpt.TrainState, stage: int):
        nonlocal early
        micro = cfg.stage_batch_size(stage) // world  # a stage may set its own global batch
        source, early = (early if stage == 0 and early is not None else
                         stage_batches(state, stage, micro, contract, rank, shard=io.stream(stage))), None
        if contract.online_epochs:  # online curation: which curation epoch is training
            source = progress.track(source, state)
        for raw in source:
            phases.mark("first_batch")
            yield make_batch(raw, cfg.stages[stage], plan[stage], engine.device, precision, rng.mask)

    watch = preemption.StopWatch(cfg.run_dir)  # SIGTERM on the driver -> checkpoint and stop
    phases.mark("loop_start")
    loop = Loop(contract=contract, engine=engine, plan=plan,
                cadence=Cadence.from_config(cfg, evaluator is not None),
                batches=batches, step=step_function(cfg), schedule=partial(lr_at, cfg),
                publish=io.publish, rng=rng, evaluator=evaluator, tracker=tracker, rank=rank, params=params,
                finite_everywhere=partial(finite_on_every_rank, device=engine.device),
                data_counts=partial(skip_counts, contract.counter_name), stop_agreed=watch.agreed,
                hooks=[step_marks(phases, state.samples_seen)], phases=phases)
    try:
        return run(loop, state)
    finally:
        watch.close()
        phases.mark("loop_end")
        if rank == 0:
            phases.write(cfg.run_dir)
