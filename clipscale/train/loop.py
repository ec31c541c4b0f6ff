"""The Ray Train worker loop: set up the DeepSpeed engine, stream batches, call ``train_step``,
and decide when to log, evaluate and checkpoint. One function per concern; Ray and DeepSpeed
are touched only here and in ``engine.py``."""
from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone

import numpy as np
import ray.train
import torch

from clipscale.config import RunConfig
from clipscale.results import append_rows, row_payload
from clipscale.train import checkpoint as ckpt
from clipscale.train.accumulation import accumulated_step
from clipscale.train.attempts import record_attempt
from clipscale.train.batches import make_batch
from clipscale.train.engine import build_engine
from clipscale.train.plan import plan_run, stage_columns
from clipscale.train.schedule import lr_at
from clipscale.train.step import train_step


def crossed(before: int, after: int, every: int) -> bool:
    """True when samples seen passed a multiple of ``every`` during the last step."""
    return after // every > before // every


def stage_batches(state: ckpt.TrainState, stage: int, micro: int, cfg: RunConfig, rank: int):
    """Endless batches of one stage's stream, epoch after epoch, starting at the checkpointed
    data position (epoch, batch_in_epoch). Ray Data's order is deterministic, so skipping the
    consumed batches of the epoch puts a resumed run exactly where the interrupted one was."""
    shard = ray.train.get_dataset_shard(f"train_{stage}")
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


def results_row(cfg: RunConfig, info: dict, plan, state: ckpt.TrainState, metrics: dict,
                status: str, params: int) -> dict:
    last = plan[-1]
    st = cfg.stages[-1]
    row = {
        "run_id": info["run_id"], "sweep": cfg.sweep, "model": cfg.model.name,
        "image_size": last.image_size, "patch_size": last.image_size // last.grid,
        "image_tokens": last.image_tokens, "text_tokens": last.text_tokens,
        "image_reduction": st.image_reduction, "text_reduction": st.text_reduction,
        "languages": info.get("languages", ""), "english_share": info.get("english_share", float("nan")),
        "seed": cfg.train.seed, "samples_seen": state.samples_seen, "params": params,
        "train_flops_per_sample": last.train_flops_per_sample, "compute": state.compute,
        "wall_time_s": state.wall_time_s, "status": status,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    row.update(stage_columns(plan, state.samples_seen))
    row.update(metrics)
    return row


def train_loop_per_worker(loop_config: dict) -> None:
    cfg = RunConfig.model_validate(loop_config["run"])
    info = loop_config["info"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    # One intra-op thread per reserved CPU: torch's default (all cores) oversubscribes a node
    # whose cores are shared by several workers and Ray Data, and then runs many times slower.
    torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    torch.manual_seed(cfg.train.seed + rank)
    np.random.seed(cfg.train.seed + rank)

    engine, precision, params = build_engine(cfg, info["vocab_size"], world)
    device = engine.device
    plan = plan_run(cfg)
    state = ckpt.TrainState()
    mask_gen = torch.Generator().manual_seed(cfg.train.seed * 31 + rank)
    restored = ray.train.get_checkpoint()
    if restored:
        with restored.as_directory() as d:
            state, extra = ckpt.restore(engine, d, rank)
        if "mask_gen" in extra:
            mask_gen.set_state(extra["mask_gen"])
        print(f"[clipscale] rank {rank}: resumed at step {state.step}, samples_seen {state.samples_seen}")
    record_attempt(cfg.run_dir, rank, world, state.step, state.samples_seen)

    tracker = None
    if rank == 0:
        from clipscale.train.tracking import Tracker
        tracker = Tracker(mode=cfg.logging.wandb_mode, project=cfg.logging.project,
                          entity=cfg.logging.entity, group=cfg.logging.group or cfg.sweep or None,
                          run_id=info["run_id"], run_dir=cfg.run_dir,
                          config={**cfg.model_dump(), "info": info, "params": params,
                                  "precision": precision, "world_size": world})
    evaluator = None
    if cfg.eval.eval_dir or cfg.eval.suites:  # h11-eval: suites also evaluate
        from clipscale.train.evaluator import Evaluator
        evaluator = Evaluator(cfg, info["tokenizer_path"], device, precision)

    stage_ends = np.cumsum(cfg.stage_samples()).tolist()
    t_start, base_wall = time.time(), state.wall_time_s
    window = {"t": time.time(), "samples": state.samples_seen}
    status = "running"
    try:
        while state.stage < len(plan):
            stage = state.stage
            sp = plan[stage]
            # h12 hook (stage batch): a stage may set its own global batch (CLIPA fine-tuning).
            global_batch = cfg.stage_batch_size(stage)
            micro = global_batch // world
            batches = stage_batches(state, stage, micro, cfg, rank)
            while state.stage == stage:
                raw = next(batches)
                lr = lr_at(cfg, state.samples_seen)  # h12 hook: schedule.lr_at (lr rule, stages)
                batch = make_batch(raw, cfg.stages[stage], sp, device, precision, mask_gen)
                if cfg.train.accumulation_steps > 1:  # h12 hook: feature-caching accumulation
                    metrics = accumulated_step(engine, batch, cfg.train.accumulation_steps,
                                               lr=lr, loss=cfg.train.loss)
                else:
                    metrics = train_step(engine, batch, lr=lr, loss=cfg.train.loss)
                before = state.samples_seen
                state.step += 1
                state.batch_in_epoch += 1
                state.samples_seen += global_batch
                state.compute += sp.train_flops_per_sample * global_batch
                state.wall_time_s = base_wall + time.time() - t_start
                last = state.samples_seen >= cfg.train.samples_seen
                if state.samples_seen >= stage_ends[stage]:
                    state.stage += 1
                    state.epoch = state.batch_in_epoch = 0

                if tracker and (state.step % cfg.logging.log_every_steps == 0 or last):
                    dt = time.time() - window["t"]
                    rate = (state.samples_seen - window["samples"]) / max(dt, 1e-9)
                    window.update(t=time.time(), samples=state.samples_seen)
                    print(f"[clipscale] step {state.step} samples_seen {state.samples_seen} "
                          f"loss {metrics['loss']:.4f} lr {lr:.2e} {rate:.0f} samples/s")
                    tracker.log({**{f"train/{k}": v for k, v in metrics.items()},
                                 "train/samples_per_s": rate,
                                 "train/flops_per_s": rate * sp.train_flops_per_sample,
                                 "train/compute": state.compute, "train/step": state.step,
                                 **{f"data/skipped_{k}": v for k, v in skipped(info).items()}},
                                state.samples_seen)
                do_eval = evaluator and (last or crossed(before, state.samples_seen, cfg.eval.every_samples))
                do_ckpt = last or crossed(before, state.samples_seen, cfg.train.checkpoint_every_samples)
                if do_eval or do_ckpt:
                    status = "finished" if last else "running"
                    report(cfg, info, plan, state, engine, evaluator if do_eval else None, do_ckpt,
                           metrics, status, params, tracker, rank, mask_gen)
    except BaseException:
        if tracker:
            tracker.finish(exit_code=1)
        raise
    if tracker:
        tracker.finish()


def skipped(info: dict) -> dict:
    name = info.get("counter_name")
    if not name:
        return {}
    from clipscale.train.data import SKIP_COUNTER_NAMESPACE
    return ray.get(ray.get_actor(name, namespace=SKIP_COUNTER_NAMESPACE).get.remote())


def report(cfg, info, plan, state, engine, evaluator, do_ckpt, metrics, status, params, tracker,
           rank, mask_gen) -> None:
    """Evaluate and/or checkpoint, then report to Ray (every rank must call ``report``)."""
    payload = {"samples_seen": state.samples_seen, "step": state.step, "loss": metrics["loss"],
               "wall_time_s": state.wall_time_s}
    if evaluator is not None:
        # Every rank runs the forward passes (ZeRO-3 partitions parameters, so the forward is
        # collective); rank 0 records.
        eval_metrics = evaluator.run(engine)
        row = results_row(cfg, info, plan, state, {"loss": metrics["loss"], **eval_metrics},
                          status, params)
        payload.update(row_payload(row))
        if rank == 0:
            append_rows(cfg.table_dir, [row])
            tracker.log({f"eval/{k}": v for k, v in eval_metrics.items()}, state.samples_seen)
            tracker.log_row(row)
            print(f"[clipscale] samples_seen {state.samples_seen}: loss {metrics['loss']:.4f} "
                  f"zeroshot_top1_mean {eval_metrics.get('zeroshot_top1_mean', float('nan')):.3f}")
    checkpoint_dir = None
    if do_ckpt:
        checkpoint_dir = ckpt.save(engine, state, rank, {"mask_gen": mask_gen.get_state()})
    ray.train.report(payload, checkpoint=ray.train.Checkpoint.from_directory(checkpoint_dir)
                     if checkpoint_dir else None)
    if checkpoint_dir:  # Ray has copied it to the storage path
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
