"""Packed trials: one long-lived Ray Train worker group (a *lane*) trains a sweep's one-worker
trials back to back, each the same run it would be on its own worker group.

Why: a Ray Train run starts a controller, a placement group, a worker process that imports
torch and DeepSpeed, a gloo group and a Ray Data split coordinator before its first step; for
the short trials of a small-machine sweep that start-up rivalled the training
(docs/throughput.md). A lane pays it once and then, per trial, only what the trial itself needs:
its run folder and tokenizer (``launch.prepare``), its DeepSpeed engine, its W&B run, its
evaluator and its stream.

What stays per trial: the run folder, its rows, its W&B run, its timing and attempt records,
its checkpoints (``checkpoint_*`` folders with commit markers in the run folder, written here
rather than by Ray Train, whose checkpoints belong to the lane), and resume (a lane restarted
after a lost worker, or a sweep relaunched with ``--resume``, continues the trial it was on from
its newest complete checkpoint). Which trial a lane trains next comes from the sweep's
``TrialQueue`` (sweep/queue.py), so lanes finish together whatever the trials' lengths.

The stream: the worker opens each trial's Ray Data stream itself (one worker: no split); with
``data.cache`` the decoded rows come from the sweep's ``RowsCache`` (train/rows_cache.py), shared
by every trial of the sweep that reads the same rows (same shards, tokenizer, image size,
language filter).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial

import ray

from clipscale import storage
from clipscale.config import RunConfig
from clipscale.train import commit, fork
from clipscale.train.contract import RunContract
from clipscale.train.timing import PhaseTimes, read_attempts
from clipscale.train.worker import RunIO, train_run

LANE_KEY = "lane"  # the one key of a lane's train_loop_config


@dataclass(frozen=True)
class LaneJob:
    """What a lane's worker receives: its number, the queue it takes trials from, every trial's
    validated config, where the sweep's trial timing records go, and the lane driver's clock
    (its start and the moment it called ``fit``) for the first trial's record."""
    lane: int
    queue: str
    configs: dict[str, RunConfig]
    timings_dir: str
    started: float
    fit_start: float
    rows_cache: str | None = None    # the sweep's RowsCache actor (train/rows_cache.py)


def checkpoint_name(now: float | None = None) -> str:
    """Ray Train's folder name format (``checkpoint_<date>_<time>.<µs>``), so every reader of run
    folders (resume, ``clipscale eval``, ``export``) finds a lane's checkpoints the same way."""
    t = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return "checkpoint_" + t.strftime("%Y-%m-%d_%H-%M-%S.%f")


def publish_to_run_folder(payload: dict, folder: str | None, *, run_dir: str, keep: int,
                          fork_points=()) -> None:
    """A lane's ``Loop.publish``: the checkpoint (commit marker last) copied into the run folder
    and the oldest beyond ``keep`` removed. Nothing goes to Ray Train: its run is the lane, whose
    checkpoints and results would mix every trial's; the trial's row is in the results table."""
    if not folder:
        return
    with commit.clear_write_errors(f"checkpoint at samples_seen {payload['samples_seen']}", run_dir):
        commit.write_marker(folder, 0, 1, payload["samples_seen"])
        fork.keep_fork_copy(folder, run_dir, payload["samples_seen"], fork_points)  # a wsd trunk
        storage.upload_dir(folder, storage.join(run_dir, checkpoint_name()))
        for old in commit.checkpoint_folders(run_dir)[:-keep]:
            storage.remove_dir(storage.join(run_dir, old))
    shutil.rmtree(folder, ignore_errors=True)


class TrialStream:
    """A trial's training rows as a source with Ray Data's ``iter_batches``. The dataset is built
    on the first ``iter_batches``, which the run's first-batch prefetch calls off the main
    thread; with ``data.cache`` it comes decoded from the sweep's ``RowsCache``
    (train/rows_cache.py), decoded there once per sweep for every trial that reads the same rows."""

    def __init__(self, contract: RunContract, rows_cache: str | None, stage: int):
        self.contract, self.rows_cache, self.stage = contract, rows_cache, stage
        self._dataset = None

    def dataset(self):
        """Built once and iterated every epoch: a second build would read and hash the tokenizer
        again and, from the cache, add another trial's skip counts to this trial's counter again."""
        from clipscale.train.launch import stage_dataset, stage_decode
        from clipscale.train.rows_cache import cached_rows

        if self._dataset is None:
            c = self.contract
            if not (c.run.data.cache and self.rows_cache):
                self._dataset = stage_dataset(c, self.stage)
            else:
                key = rows_key(c.shards, storage.read_bytes(c.tokenizer_path), stage_decode(c, self.stage))
                self._dataset = cached_rows(self.rows_cache, key, c, self.stage)
        return self._dataset

    def iter_batches(self, **kwargs):
        return self.dataset().iter_batches(**kwargs)


def rows_key(shards, tokenizer: bytes, decode: dict) -> str:
    """Trials whose decoded rows are the same rows share one cache entry: the tokenizer by its
    bytes (each run keeps its own copy), not by the run's counter, path or read parallelism, nor
    by a seed that draws nothing (the language filter's without ``keep_rates``, the online draw's
    without ``online_epochs``): trials that differ only in seed share their rows."""
    unused = {"counter_name", "curation_counter", "read_parallelism", "tokenizer_path"}
    if decode.get("keep_rates") is None:
        unused.add("filter_seed")
    if not decode.get("online_epochs"):
        unused.add("online_seed")
    fields = {k: v for k, v in decode.items() if k not in unused}
    text = json.dumps({"shards": list(shards), "decode": fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode() + hashlib.sha256(tokenizer).digest()).hexdigest()


def lane_io(contract: RunContract, rows_cache: str | None = None) -> RunIO:
    cfg = contract.run
    return RunIO(stream=partial(TrialStream, contract, rows_cache),
                 restored=lambda: commit.usable_checkpoint(commit.newest_checkpoint(cfg.run_dir), cfg.run_dir),
                 publish=partial(publish_to_run_folder, run_dir=cfg.run_dir, keep=cfg.train.keep_checkpoints,
                                 fork_points=cfg.train.fork_points))


def train_lane_per_worker(loop_config: dict) -> None:
    """Take trials from the sweep's queue until it is empty; train each to its end."""
    from clipscale.sweep.queue import queue_actor
    from clipscale.train.launch import ordered_data_context, prepare

    job: LaneJob = loop_config[LANE_KEY]
    ordered_data_context()  # the same batches as a run of its own
    queue = queue_actor(job.queue)
    # a restarted lane (a lost worker) continues its records from its last finished trial
    ended = ray.get(queue.last_end.remote(job.lane))
    start, fit_start = (job.started, job.fit_start) if ended is None else (ended, ended)
    while (trial := ray.get(queue.next.remote(job.lane))) is not None:
        cfg = job.configs[trial]
        phases = PhaseTimes()
        phases.mark("worker_start")
        resume = storage.exists(storage.join(cfg.run_dir, "run_info.json"))
        contract = prepare(cfg, resume=resume)
        phases.mark("prepared")
        status = train_run(contract, lane_io(contract, job.rows_cache), phases)
        end = time.time()
        # the trial's record in the sweep's timings (train/timing.py: split reads it back); the
        # lane's start-up counts in its first trial, each later trial starts where the last ended
        storage.write_text(storage.join(job.timings_dir, f"{cfg.name}.json"), json.dumps(
            {"trial": cfg.name, "lane": job.lane, "start": start, "prepared": start, "fit_start": fit_start,
             "fit_end": end, "resumed": resume, "failure": status if status == "failed" else None,
             "attempts": read_attempts(cfg.run_dir, since=start)}))
        if status == "stopped":  # preemption: the trial checkpointed; --resume continues it
            return
        ray.get(queue.done.remote(job.lane, trial, status, end))
        start = fit_start = end
