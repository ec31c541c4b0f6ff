"""Launch a sweep on Ray Tune: one trial = one Ray Train run (Ray 2.60's Train V2 pattern).

The trainable is a function: it prepares the trial's run (tokenizer, run folder), builds its
``TorchTrainer`` with a ``TuneReportCallback`` and calls ``fit()``. ``Tuner(TorchTrainer)`` does
not work with Train V2. The trainable itself holds almost nothing (0.01 CPU, on the head node unless
``train.trial_driver_resource`` says otherwise: train/preemption.py); the trial's Train
workers and Ray Data tasks hold the real resources, and the Tuner runs as many trials at once as
those resources allow (``dry_run.concurrency``).

Resume. A sweep keeps ``sweep.json`` (its trials) in its folder. ``--resume`` relaunches the
trials that have no ``finished`` row in the results table; a trial that was interrupted mid-run
continues from its own last Ray Train checkpoint (same run name and storage path), and finished
trials are not touched, so their rows stay as they were. Resume is keyed on the results table
rather than on ``Tuner.restore``: the table is what the research needs complete, it survives a
driver killed with its local Ray cluster, and it works the same when trials were written by
several drivers.
"""
from __future__ import annotations

import json
import time

from clipscale import storage
from clipscale.config import ConfigError, RunConfig
from clipscale.sweep.expand import Trial
from clipscale.sweep.sweep import Sweep
from clipscale.train import preemption


def run_trial(config: dict, run_configs: dict, timings_dir: str) -> None:
    """The Tune trainable: one Ray Train run, resumed from its checkpoint if it was started."""
    from ray.tune.integration.ray_train import TuneReportCallback

    from clipscale.train.launch import build_trainer, prepare, run_failure
    from clipscale.train.timing import read_attempts

    t0 = time.time()
    cfg = RunConfig.model_validate(run_configs[config["trial"]])
    if preemption.stop_requested(cfg.run_dir):  # the sweep is being preempted: start nothing
        return
    resume = storage.exists(storage.join(cfg.run_dir, "run_info.json"))
    contract = prepare(cfg, resume=resume)
    t_prepared = time.time()
    trainer = build_trainer(contract, callbacks=[TuneReportCallback()])
    t_fit = time.time()
    result = trainer.fit()
    t_end = time.time()
    failure = run_failure(result)
    # this trial attempt's phases (train/timing.py: split() reads them back)
    storage.write_text(storage.join(timings_dir, f"{cfg.name}.json"), json.dumps(
        {"trial": cfg.name, "start": t0, "prepared": t_prepared, "fit_start": t_fit, "fit_end": t_end,
         "resumed": resume, "failure": failure, "attempts": read_attempts(cfg.run_dir, since=t_fit)}))
    if result.error:
        raise result.error  # Tune retries it (a lost node); a diverged run is not retried (launch.build_trainer)


def run_lane(config: dict, run_configs: dict, queue: str, timings_dir: str, rows_cache: str | None = None) -> None:
    """The Tune trainable of a packed sweep: one lane (train/lane.py), a one-worker Ray Train run
    that takes trials from the sweep's queue until it is empty. It reports nothing to Tune: the
    lane's trials write their own rows and records, the queue knows their outcomes, and Tune's
    report path from a Train run costs each lane one more actor process at its start."""
    from clipscale.train.lane import LaneJob

    t0 = time.time()
    configs = {t: RunConfig.model_validate(c) for t, c in run_configs.items()}
    trainer = lane_trainer(next(iter(configs.values())), LaneJob(
        lane=config["lane"], queue=queue, configs=configs, timings_dir=timings_dir, started=t0,
        fit_start=time.time(), rows_cache=rows_cache))
    result = trainer.fit()
    end_lane_record(timings_dir, config["lane"], time.time())
    if result.error:
        raise result.error


def lane_trainer(cfg: RunConfig, job):
    """One lane's TorchTrainer: one worker with the trials' shared resources (Sweep.of checked
    that they agree); the lane's own folder holds Ray Train's state, the trials' runs their own."""
    from ray.train import FailureConfig, LoggingConfig, RunConfig as RayRunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from clipscale.run_inputs import wants_gpu
    from clipscale.train.lane import LANE_KEY, train_lane_per_worker

    return TorchTrainer(
        train_lane_per_worker, train_loop_config={LANE_KEY: job},
        scaling_config=ScalingConfig(num_workers=1, use_gpu=wants_gpu(cfg),
                                     resources_per_worker={"CPU": cfg.train.cpus_per_worker}),
        # a folder per launch: a relaunched sweep's lanes start afresh (their trials resume from
        # their own run folders, not from Ray Train's state of an earlier lane)
        run_config=RayRunConfig(name=f"lanes/{job.queue}/lane-{job.lane}", storage_path=storage.absolute(cfg.output_dir),
                                # a lost worker restarts the lane, which continues its trial
                                failure_config=FailureConfig(max_failures=cfg.train.max_failures),
                                logging_config=LoggingConfig(log_level="WARNING")))


def end_lane_record(timings_dir: str, lane: int, end: float) -> None:
    """The lane's last trial record ends when the lane's worker group has shut down, so the
    trials' records of a lane add up to the lane's wall (its teardown counts as overhead)."""
    from clipscale.train.timing import read_trials

    mine = [r for r in read_trials(timings_dir) if r.get("lane") == lane]
    if mine:
        last = max(mine, key=lambda r: r["fit_end"])
        last["fit_end"] = max(end, last["fit_end"])
        storage.write_text(storage.join(timings_dir, f"{last['trial']}.json"), json.dumps(last))


def lane_errors(grid, queue_state: dict, trials: list[str]) -> dict[str, str]:
    """A packed sweep's failed trials: a diverged trial (its row says failed), the trial a lane
    was on when the lane failed for good, and the trials no lane reached."""
    lane_error = {r.config["lane"]: str(r.error).splitlines()[0][:300] for r in grid if r.error}
    errors = {}
    for t in trials:
        outcome = queue_state["outcome"].get(t)
        if outcome == "failed":
            errors[t] = "non-finite loss: the run's row says failed"
        elif outcome is None:
            lane = queue_state["lanes"].get(t)
            errors[t] = lane_error.get(lane, "stopped before it finished") if lane is not None else "not run"
    return errors


def finished_trials(table_dir: str) -> set[str]:
    """Run ids with a ``finished`` row in the results table (part files name their status)."""
    from clipscale.results import read_results

    if not storage.list_files(table_dir, "part-*-finished.parquet"):
        return set()
    df = read_results(table_dir)
    return set(df.loc[df["status"] == "finished", "run_id"])


def check_state(root: str, name: str, trials: list[Trial], resume: bool) -> None:
    """A fresh sweep refuses an existing folder; ``--resume`` needs one with the same trials.
    ``root`` is a path or a URI (the sweep's folder on the storage every node reaches)."""
    from clipscale.run_inputs import check_locations

    check_locations([("output_dir", root)])
    state = storage.join(root, "sweep.json")
    ids = [t.id for t in trials]
    if storage.exists(state) and not resume:
        raise ConfigError(f"sweep {name} exists at {root}; pass --resume to continue it, or rename it")
    if resume:
        if not storage.exists(state):
            raise ConfigError(f"--resume: no sweep at {root}")
        old = json.loads(storage.read_text(state))["trials"]
        if sorted(old) != sorted(ids):
            raise ConfigError(f"--resume: the sweep file's trials differ from the ones started at {root} "
                              f"(new: {sorted(set(ids) - set(old))}, gone: {sorted(set(old) - set(ids))})")
    storage.write_text(state, json.dumps({"name": name, "trials": ids,
                                          "params": {t.id: t.params for t in trials}}, indent=1, default=str))


def sweep_tokenizer(sweep: Sweep) -> None:
    """Train the sweep's shared tokenizer once (when the base run names none); every trial agrees
    on its shards, sample count and vocabulary (``Sweep.of`` checked)."""
    from clipscale.data.shards import list_shards
    from clipscale.run_inputs import data_summary, store_tokenizer

    cfg = sweep.tokenizer_to_train
    if cfg is None or storage.exists(cfg.tokenizer.path):
        return  # the base run names its own (prepare() checks that it exists), or present
    path = cfg.tokenizer.path
    captions, _ = data_summary(list_shards(cfg.data.train_shards), cfg.tokenizer.train_samples)
    store_tokenizer(captions, path, cfg.tokenizer.vocab_size)


def launch(sweep: Sweep, resume: bool, cap: int | None = None, check: bool = True) -> dict:
    """Run every unfinished trial on Ray Tune; returns a summary of what ran and where rows are.
    ``cap``: at most this many trials at once (default: the sweep file's, else what fits).
    ``check=False``: the caller checked the sweep's state for all its trials (sweep/fork_launch.py
    launches a sweep's trunks, then its forks)."""
    import ray
    from ray import tune

    from clipscale.ray_setup import init_ray

    name, root, trials = sweep.name, sweep.root, sweep.trials
    if check:
        check_state(root, name, [t for t, _ in trials], resume)
    table_dir = sweep.table_dir
    done = finished_trials(table_dir)
    pending = [(t, c) for t, c in trials if t.id not in done]
    summary = {"trials": len(trials), "skipped_finished": sorted(t.id for t, _ in trials if t.id in done),
               "ran": [t.id for t, _ in pending], "errors": {}, "results": table_dir, "sweep_dir": root}
    if not pending:
        return summary
    sweep_tokenizer(sweep)
    use_gpu = sweep.use_gpu()
    init_ray(use_gpu=use_gpu)
    res = ray.cluster_resources()
    slots = sweep.concurrency(res, use_gpu, cap, pending)
    print(f"[clipscale] sweep {name}: {len(pending)} trials to run ({len(done)} already finished), "
          f"{slots} at a time on { {k: res[k] for k in ('CPU', 'GPU') if k in res} }", flush=True)
    run_configs = {t.id: c.model_dump(mode="json") for t, c in pending}
    timings = storage.join(root, "timings")
    if sweep.spec.pack_trials:  # lanes take the trials from a queue, costliest first
        from clipscale.sweep.queue import create_queue, lane_order
        from clipscale.train.plan import plan_run
        from clipscale.train.rows_cache import create_rows_cache, rows_cache_name

        order = lane_order({t.id: sum(p.compute for p in plan_run(c)) for t, c in pending})
        queue, queue_name = create_queue(name, order)
        # one decode per row set for the whole launch (data.cache); the driver holds it
        rows_cache = create_rows_cache(queue_name)
        trainable = tune.with_parameters(run_lane, run_configs=run_configs, queue=queue_name,
                                         timings_dir=timings, rows_cache=rows_cache_name(queue_name))
        space = {"lane": tune.grid_search(list(range(slots)))}
    else:
        trainable = tune.with_parameters(run_trial, run_configs=run_configs, timings_dir=timings)
        space = {"trial": tune.grid_search([t.id for t, _ in pending])}
    tuner = tune.Tuner(
        tune.with_resources(trainable, preemption.driver_resources(sweep.trial_driver_resource)),
        param_space=space,
        # reuse_actors: the next trial runs in the finished trial's trainable process, which has
        # clipscale, Ray Train and torch imported already (docs/throughput.md: per-trial start-up)
        tune_config=tune.TuneConfig(max_concurrent_trials=slots, reuse_actors=True),
        # A trial whose trainable (the Train driver) died with its node is started again on the
        # nodes left; it finds its run folder and continues from its last checkpoint. Worker
        # failures inside a trial are Ray Train's (train.max_failures), not Tune's.
        run_config=tune.RunConfig(name=name, storage_path=storage.join(root, "tune"), verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=sweep.max_failures)),
    )
    # Launch records (a line at the start and one at the end of each launch, the first run and
    # every resume): the benchmark reads scheduling overhead from these and the trials' timings.
    t0 = time.time()
    launches = storage.join(root, "launches.jsonl")
    storage.append_text(launches, json.dumps({"event": "start", "time": t0, "trials": summary["ran"],
                                              "slots": slots}) + "\n")
    # reliability hook: SIGTERM asks every pending trial to checkpoint and stop (train/preemption.py)
    for _, c in pending:
        preemption.clear_notice(c.run_dir)
    preemption.install_driver_handler([c.run_dir for _, c in pending], sweep.preemption_grace_s)
    grid = tuner.fit()
    summary["wall_s"] = time.time() - t0
    storage.append_text(launches, json.dumps({"event": "end", "time": time.time(), "start": t0}) + "\n")
    if sweep.spec.pack_trials:
        summary["errors"] = lane_errors(grid, ray.get(queue.state.remote()), [t.id for t, _ in pending])
    for r in ([] if sweep.spec.pack_trials else grid):
        if r.error:
            summary["errors"][r.config["trial"]] = str(r.error).splitlines()[0][:300]
        elif (r.metrics or {}).get("status") == "failed":  # a non-finite loss: its row says failed
            summary["errors"][r.config["trial"]] = str(r.metrics.get("failure", "failed"))[:300]
    stopped = [c.run_dir for _, c in pending if preemption.stop_requested(c.run_dir)]
    if stopped:  # reliability hook: preempted; the unfinished trials continue on --resume
        preemption.exit_if_stopped(stopped[0], "clipscale sweep <sweep file> --resume")
    return summary
