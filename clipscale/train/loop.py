"""The training loop core: next batch -> step -> cadence -> report, for any engine.

No Ray and no DeepSpeed here (``worker.py`` is the Ray Train edge that builds a ``Loop`` from
them); the in-process tests run this same loop with ``engine.PlainEngine`` and a plain batch
iterator. The pieces the loop calls are separate and replaceable: ``step`` (one optimizer step,
``train/step.py``), ``schedule`` (learning rate from samples seen, ``train/schedule.py``),
``cadence`` (what is due after a step, ``train/cadence.py``), ``evaluator`` (``run(engine) ->
metrics``), ``publish`` (hand a report and a checkpoint folder to the outside: Ray Train's
``report``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from clipscale.results import append_rows, row_payload
from clipscale.train import checkpoint as ckpt
from clipscale.train.cadence import Cadence, Decision
from clipscale.train.contract import RunContract
from clipscale.train.fork import fork_columns
from clipscale.train.plan import StagePlan, stage_columns
from clipscale.train.step import Batch
from clipscale.train.timing import PhaseTimes

RUNNING, FINISHED, FAILED = "running", "finished", "failed"
STOPPED = "stopped"  # not a row status: the run checkpointed and stopped early (preemption)


@dataclass(frozen=True)
class StepResult:
    """One step's outcome as the report sees it."""
    stage: int             # the stage the step trained in
    metrics: dict          # the step function's output (loss, lr, logit_scale)
    decision: Decision
    status: str            # RUNNING, FINISHED or FAILED (a non-finite loss)


@dataclass
class Loop:
    contract: RunContract
    engine: Any                                        # __call__, backward, step, optimizer, module
    plan: list[StagePlan]
    cadence: Cadence
    batches: Callable[[ckpt.TrainState, int], Iterator[Batch]]  # (state, stage) -> batches from the data position
    schedule: Callable[[int], float]                   # lr from samples seen
    step: Callable[..., dict]                          # step(engine, batch, lr=...) -> metrics with "loss"
    publish: Callable[[dict, str | None], None]        # (payload, checkpoint folder or None); every rank
    rng: ckpt.WorkerRng
    evaluator: Any = None                              # run(engine) -> metrics; every rank calls it
    tracker: Any = None                                # tracking.Tracker on rank 0, None elsewhere
    rank: int = 0
    params: int = 0
    # True when the loss is finite on every rank (a collective under Ray: ranks must agree to stop)
    finite_everywhere: Callable[[float], bool] = math.isfinite
    data_counts: Callable[[], dict] = dict             # rows the data pipeline skipped, by reason
    # True when every rank agrees to stop early (preemption, train/preemption.py): the loop then
    # checkpoints (unless this step just did) and returns STOPPED; --resume continues the run
    stop_agreed: Callable[[], bool] = lambda: False
    hooks: list[Callable[[Loop, ckpt.TrainState, StepResult], None]] = field(default_factory=list)
    phases: PhaseTimes = field(default_factory=PhaseTimes)  # eval / checkpoint seconds (train/timing.py)


class Throughput:
    """Wall time of the run (carried over restarts) and samples/s since the last log line."""

    def __init__(self, state: ckpt.TrainState):
        self.t_start, self.base_wall = time.time(), state.wall_time_s
        self.t, self.samples = time.time(), state.samples_seen

    def wall(self) -> float:
        return self.base_wall + time.time() - self.t_start

    def rate(self, samples_seen: int) -> float:
        now = time.time()
        rate = (samples_seen - self.samples) / max(now - self.t, 1e-9)
        self.t, self.samples = now, samples_seen
        return rate


def advance(state: ckpt.TrainState, stage: StagePlan, global_batch: int) -> int:
    """Count one optimizer step of ``global_batch`` samples; returns samples seen before it."""
    before = state.samples_seen
    state.step += 1
    state.batch_in_epoch += 1
    state.samples_seen += global_batch
    state.compute += stage.train_flops_per_sample * global_batch
    return before


def run(loop: Loop, state: ckpt.TrainState) -> str:
    """Train from ``state`` to the end of the last stage; returns FINISHED, FAILED or STOPPED. A
    non-finite loss stops the run after a FAILED row (see ``report``): replaying the same
    batches from the last checkpoint would diverge again, so it is not an error to retry."""
    clock = Throughput(state)
    try:
        while state.stage < len(loop.plan):
            stage = state.stage
            # a stage may set its own global batch (CLIPA's fine-tuning stage; docs/recipes.md)
            global_batch = loop.contract.run.stage_batch_size(stage)
            batches = loop.batches(state, stage)
            while state.stage == stage:
                batch = next(batches)
                metrics = loop.step(loop.engine, batch, lr=loop.schedule(state.samples_seen))
                before = advance(state, loop.plan[stage], global_batch)
                state.wall_time_s = clock.wall()
                decision = loop.cadence.decide(stage, state.step, before, state.samples_seen)
                if decision.stage_done:
                    state.stage += 1
                    state.epoch = state.batch_in_epoch = 0
                finite = loop.finite_everywhere(metrics["loss"])
                status = FAILED if not finite else FINISHED if decision.last else RUNNING
                result = StepResult(stage, metrics, decision, status)
                report(loop, state, result, clock)
                for hook in loop.hooks:
                    hook(loop, state, result)
                if status == FAILED:
                    return finish(loop, FAILED)
                if status == RUNNING and loop.stop_agreed():
                    return stop_early(loop, state, result, clock)
    except BaseException:
        finish(loop, FAILED)
        raise
    return finish(loop, FINISHED)


def stop_early(loop: Loop, state: ckpt.TrainState, result: StepResult, clock: Throughput) -> str:
    """Preemption: checkpoint now unless this step just did, then stop (every rank together)."""
    if not result.decision.checkpoint:
        forced = replace(result.decision, log=False, eval=False, checkpoint=True)
        report(loop, state, replace(result, decision=forced), clock)
    if loop.rank == 0:
        print(f"[clipscale] stopped for preemption at samples_seen {state.samples_seen} "
              "(checkpointed)", flush=True)
    return finish(loop, STOPPED)


def finish(loop: Loop, status: str) -> str:
    if loop.tracker:
        loop.tracker.finish(exit_code=0 if status == FINISHED else 1)
    return status


def report(loop: Loop, state: ckpt.TrainState, result: StepResult, clock: Throughput) -> None:
    """Log (rank 0), then evaluate and/or checkpoint and publish (every rank: both are
    collective under ZeRO). A FAILED step writes its row and publishes without a checkpoint, so
    the run's last good checkpoint stays the one Ray keeps."""
    d, metrics = result.decision, result.metrics
    if loop.tracker and (d.log or result.status == FAILED):
        log_step(loop, state, result, clock.rate(state.samples_seen))
    if not (d.report or result.status == FAILED):
        return
    payload = {"samples_seen": state.samples_seen, "step": state.step, "loss": metrics["loss"],
               "wall_time_s": state.wall_time_s, "status": result.status}
    if result.status == FAILED:
        payload["failure"] = (f"non-finite loss {metrics['loss']} at step {state.step} "
                              f"(samples_seen {state.samples_seen})")
        record_row(loop, state, {"loss": metrics["loss"]}, FAILED, payload)
        if loop.rank == 0:
            print(f"[clipscale] run {loop.contract.run_id} failed: {payload['failure']}", flush=True)
        loop.publish(payload, None)
        return
    if d.eval and loop.evaluator is not None:
        with loop.phases.timed("eval"):
            eval_metrics = loop.evaluator.run(loop.engine)
        if loop.tracker:
            loop.tracker.log({f"eval/{k}": v for k, v in eval_metrics.items()}, state.samples_seen)
        record_row(loop, state, {"loss": metrics["loss"], **eval_metrics}, result.status, payload)
        if loop.tracker:
            print(f"[clipscale] samples_seen {state.samples_seen}: loss {metrics['loss']:.4f} "
                  f"zeroshot_top1_mean {eval_metrics.get('zeroshot_top1_mean', float('nan')):.3f}")
    with loop.phases.timed("checkpoint"):  # the write and Ray's copy to the storage path
        folder = ckpt.save(loop.engine, state, loop.rng, loop.rank) if d.checkpoint else None
        loop.publish(payload, folder)


def log_step(loop: Loop, state: ckpt.TrainState, result: StepResult, rate: float) -> None:
    metrics, flops = result.metrics, loop.plan[result.stage].train_flops_per_sample
    print(f"[clipscale] step {state.step} samples_seen {state.samples_seen} "
          f"loss {metrics['loss']:.4f} lr {metrics['lr']:.2e} {rate:.0f} samples/s")
    loop.tracker.log({**{f"train/{k}": v for k, v in metrics.items()},
                      "train/samples_per_s": rate, "train/flops_per_s": rate * flops,
                      "train/compute": state.compute, "train/step": state.step,
                      **{f"data/skipped_{k}": v for k, v in loop.data_counts().items()}},
                     state.samples_seen)


def record_row(loop: Loop, state: ckpt.TrainState, metrics: dict, status: str, payload: dict) -> None:
    """One results row: into the payload on every rank, into the table and W&B on rank 0."""
    row = results_row(loop.contract, loop.plan, state, metrics, status, loop.params)
    payload.update(row_payload(row))
    if loop.rank == 0:
        append_rows(loop.contract.run.table_dir, [row])
        if loop.tracker:
            loop.tracker.log_row(row)


def results_row(contract: RunContract, plan: list[StagePlan], state: ckpt.TrainState, metrics: dict,
                status: str, params: int) -> dict:
    cfg = contract.run
    last, st = plan[-1], cfg.stages[-1]
    row = {
        "run_id": contract.run_id, "sweep": cfg.sweep, "model": cfg.model.name,
        "image_size": last.image_size, "patch_size": last.image_size // last.grid,
        "image_tokens": last.image_tokens, "text_tokens": last.text_tokens,
        "image_reduction": st.image_reduction, "text_reduction": st.text_reduction,
        "languages": contract.languages, "english_share": contract.english_share,
        "seed": cfg.train.seed, "samples_seen": state.samples_seen, "params": params,
        "train_flops_per_sample": last.train_flops_per_sample, "compute": state.compute,
        "wall_time_s": state.wall_time_s, "status": status,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    row.update(stage_columns(plan, state.samples_seen))
    row.update(fork_columns(cfg.train.init_from))  # a cooldown fork: its trunk and fork point
    row.update(metrics)
    return row
