"""Launch a sweep on Ray Tune: one trial = one Ray Train run (Ray 2.60's Train V2 pattern).

The trainable is a function: it prepares the trial's run (tokenizer, run folder), builds its
``TorchTrainer`` with a ``TuneReportCallback`` and calls ``fit()``. ``Tuner(TorchTrainer)`` does
not work with Train V2. The trainable itself holds almost nothing (0.01 CPU); the trial's Train
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
from pathlib import Path

from clipscale.config import ConfigError, RunConfig
from clipscale.sweep.expand import Trial


def run_trial(config: dict, run_configs: dict, timings_dir: str) -> None:
    """The Tune trainable: one Ray Train run, resumed from its checkpoint if it was started."""
    from ray.tune.integration.ray_train import TuneReportCallback

    from clipscale.train.launch import build_trainer, prepare

    t0 = time.time()
    cfg = RunConfig.model_validate(run_configs[config["trial"]])
    resume = (cfg.run_dir / "run_info.json").exists()
    info = prepare(cfg, resume=resume)
    trainer = build_trainer(cfg, info, callbacks=[TuneReportCallback()])
    t_fit = time.time()
    result = trainer.fit()
    t_end = time.time()
    Path(timings_dir).mkdir(parents=True, exist_ok=True)
    (Path(timings_dir) / f"{cfg.name}.json").write_text(json.dumps(
        {"trial": cfg.name, "start": t0, "fit_start": t_fit, "fit_end": t_end, "resumed": resume}))
    if result.error:
        raise result.error


def finished_trials(table_dir: Path) -> set[str]:
    """Run ids with a ``finished`` row in the results table (part files name their status)."""
    if not table_dir.is_dir():
        return set()
    from clipscale.results import read_results

    files = list(table_dir.glob("part-*-finished.parquet"))
    if not files:
        return set()
    df = read_results(table_dir)
    return set(df.loc[df["status"] == "finished", "run_id"])


def check_state(root: Path, name: str, trials: list[Trial], resume: bool) -> None:
    """A fresh sweep refuses an existing folder; ``--resume`` needs one with the same trials."""
    state = root / "sweep.json"
    ids = [t.id for t in trials]
    if state.exists() and not resume:
        raise ConfigError(f"sweep {name} exists at {root}; pass --resume to continue it, or rename it")
    if resume:
        if not state.exists():
            raise ConfigError(f"--resume: no sweep at {root}")
        old = json.loads(state.read_text())["trials"]
        if sorted(old) != sorted(ids):
            raise ConfigError(f"--resume: the sweep file's trials differ from the ones started at {root} "
                              f"(new: {sorted(set(ids) - set(old))}, gone: {sorted(set(old) - set(ids))})")
    root.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"name": name, "trials": ids,
                                 "params": {t.id: t.params for t in trials}}, indent=1, default=str))


def sweep_tokenizer(trials: list[tuple[Trial, RunConfig]]) -> None:
    """Train the sweep's shared tokenizer once (when the base run names none)."""
    from clipscale.data.shards import list_shards
    from clipscale.text.tokenizer import train_tokenizer
    from clipscale.train.launch import data_summary

    cfg = trials[0][1]
    path = Path(cfg.tokenizer.path)
    if path.exists() or path != Path(cfg.output_dir) / "tokenizer.model":
        return  # present, or the base run names its own (prepare() checks that it exists)
    captions, _ = data_summary(list_shards(cfg.data.train_shards), cfg.tokenizer.train_samples)
    train_tokenizer(captions, path, vocab_size=cfg.tokenizer.vocab_size)


def launch(name: str, root: Path, trials: list[tuple[Trial, RunConfig]], resume: bool,
           cap: int | None = None) -> dict:
    """Run every unfinished trial on Ray Tune; returns a summary of what ran and where rows are."""
    import ray
    from ray import tune

    from clipscale.sweep.dry_run import concurrency, trial_resources
    from clipscale.train.launch import init_ray, wants_gpu

    check_state(root, name, [t for t, _ in trials], resume)
    table_dir = trials[0][1].table_dir
    done = finished_trials(table_dir)
    pending = [(t, c) for t, c in trials if t.id not in done]
    summary = {"trials": len(trials), "skipped_finished": sorted(t.id for t, _ in trials if t.id in done),
               "ran": [t.id for t, _ in pending], "errors": {}, "results": table_dir, "sweep_dir": root}
    if not pending:
        return summary
    sweep_tokenizer(trials)
    cfg0 = pending[0][1]
    use_gpu = wants_gpu(cfg0)
    init_ray(use_gpu=use_gpu)
    res = ray.cluster_resources()
    slots = concurrency(res, trial_resources(cfg0, use_gpu), len(pending), cap)
    print(f"[clipscale] sweep {name}: {len(pending)} trials to run ({len(done)} already finished), "
          f"{slots} at a time on {dict((k, res[k]) for k in ('CPU', 'GPU') if k in res)}", flush=True)
    run_configs = {t.id: c.model_dump(mode="json") for t, c in pending}
    trainable = tune.with_parameters(run_trial, run_configs=run_configs, timings_dir=str(root / "timings"))
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"CPU": 0.01}),
        param_space={"trial": tune.grid_search([t.id for t, _ in pending])},
        tune_config=tune.TuneConfig(max_concurrent_trials=slots),
        run_config=tune.RunConfig(name=name, storage_path=str(root / "tune"), verbose=1),
    )
    # Launch records (a line at the start and one at the end of each launch, the first run and
    # every resume): the benchmark reads scheduling overhead from these and the trials' timings.
    t0 = time.time()
    with open(root / "launches.jsonl", "a") as f:
        f.write(json.dumps({"event": "start", "time": t0, "trials": summary["ran"], "slots": slots}) + "\n")
    grid = tuner.fit()
    summary["wall_s"] = time.time() - t0
    with open(root / "launches.jsonl", "a") as f:
        f.write(json.dumps({"event": "end", "time": time.time(), "start": t0}) + "\n")
    for r in grid:
        if r.error:
            summary["errors"][r.config["trial"]] = str(r.error).splitlines()[0][:300]
    return summary
