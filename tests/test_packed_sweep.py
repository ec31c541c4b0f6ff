"""Packed sweeps (``pack_trials``: train/lane.py): trials run back to back in long-lived one-worker
Ray Train groups, with their decoded rows cached (``data.cache``). Each packed trial must be the
run it would have been on its own worker group: same rows, same checkpoints layout, same losses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clipscale.results import read_results
from clipscale.sweep.queue import lane_order
from clipscale.train import commit
from clipscale.train.lane import checkpoint_name, rows_key
from clipscale.train.timing import overhead, split

REPO = Path(__file__).resolve().parents[1]


def base(pool: Path, out: Path) -> dict:
    return {
        "output_dir": str(out),
        "data": {"train_shards": str(pool / "pool"), "shuffle_buffer": 256, "read_parallelism": 1, "cache": True},
        "model": {"name": "tiny-xs"},
        "tokenizer": {"vocab_size": 512, "train_samples": 1600},
        "stages": [{"image_size": 16, "text_tokens": 8}],
        "train": {"samples_seen": 1024, "global_batch_size": 64, "lr": 1e-3, "warmup_samples": 128,
                  "zero_stage": 0, "num_workers": 1, "cpus_per_worker": 1, "checkpoint_every_samples": 256,
                  "keep_checkpoints": 2},
        "eval": {"eval_dir": str(pool / "eval"), "every_samples": 1024, "batch_size": 128},
        "logging": {"wandb_mode": "offline", "log_every_steps": 1},
    }


def cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "RAY_AUTH_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "clipscale.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def packed(tiny_pool, tmp_path_factory):
    """A packed sweep of 4 trials on 2 lanes, and trial (seed 0, 16 px) trained on its own."""
    out = tmp_path_factory.mktemp("packed")
    sweep = {"name": "packed", "pack_trials": True, "max_concurrent_trials": 2,
             "base": base(tiny_pool, out / "runs"), "axes": {"seed": [0, 1], "image_size": [16, 8]}}
    (out / "packed.yaml").write_text(yaml.safe_dump(sweep))
    done = cli("sweep", str(out / "packed.yaml"))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    alone = {**base(tiny_pool, out / "alone"), "name": "alone"}
    alone["tokenizer"] = {"path": str(out / "runs" / "packed" / "tokenizer.model")}
    (out / "alone.yaml").write_text(yaml.safe_dump(alone))
    single = cli("train", str(out / "alone.yaml"))
    assert single.returncode == 0, (single.stdout + single.stderr)[-4000:]
    return out


def test_packed_trials_each_finish_once_with_their_own_checkpoints(packed):
    root = packed / "runs" / "packed"
    trials = json.loads((root / "sweep.json").read_text())["trials"]
    df = read_results(root / "results")
    assert sorted(df["run_id"]) == sorted(trials) and len(trials) == 4
    assert set(df["status"]) == {"finished"} and set(df["samples_seen"]) == {1024}
    for t in trials:
        folders = commit.checkpoint_folders(str(root / t))
        # every 256 samples a checkpoint, the oldest removed beyond keep_checkpoints: 2 remain, complete
        assert len(folders) == 2, folders
        assert all(commit.incomplete_reason(root / t / f) is None for f in folders)
        state = json.loads((root / t / folders[-1] / "train_state.json").read_text())
        assert state["samples_seen"] == 1024 and state["step"] == 16


def test_packed_trial_equals_the_same_run_on_its_own_worker_group(packed):
    """Same rows in the same order (cache, no split), same step, same checkpoints: same losses."""
    from analysis.wandb_records import history_rows

    def losses(run_dir: Path) -> dict[int, float]:
        (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
        return {int(r["train/step"]): r["train/loss"] for r in history_rows(run_file) if "train/loss" in r}

    root = packed / "runs" / "packed"
    params = json.loads((root / "sweep.json").read_text())["params"]
    (trial,) = [t for t, p in params.items() if p["seed"] == 0 and p["image_size"] == 16]
    mine, alone = losses(root / trial), losses(packed / "alone" / "alone")
    assert sorted(mine) == list(range(1, 17)) and sorted(alone) == sorted(mine)
    for step in mine:
        assert mine[step] == pytest.approx(alone[step], rel=1e-6), step
    rows = read_results(root / "results").set_index("run_id")
    single = read_results(packed / "alone" / "results").iloc[0]
    assert rows.loc[trial, "zeroshot_top1_mean"] == pytest.approx(single["zeroshot_top1_mean"], abs=1e-9)


def test_packed_timing_records_add_up_to_the_lanes(packed):
    from clipscale.train.timing import read_trials

    records = read_trials(packed / "runs" / "packed" / "timings")
    assert sorted(r["lane"] for r in records) == [0, 0, 1, 1]
    for lane in (0, 1):
        mine = sorted((r for r in records if r["lane"] == lane), key=lambda r: r["start"])
        assert mine[1]["start"] == mine[0]["fit_end"]  # back to back: no gap unaccounted
        # the lane's start-up (Ray Train's worker group) is in its first trial only
        assert split(mine[0])["worker_group_start"] > split(mine[1])["worker_group_start"]
    for r in records:
        phases = split(r)
        assert sum(phases.values()) == pytest.approx(r["fit_end"] - r["start"])
        assert phases["train"] > 0 and phases["prepare"] > 0
    assert 0 < overhead(records) < 1


def test_lane_order_puts_the_costliest_first():
    assert lane_order({"a": 1.0, "b": 3.0, "c": 2.0, "d": 3.0}) == ["b", "d", "c", "a"]


def test_queue_hands_a_restarted_lane_its_unfinished_trial():
    import ray

    from clipscale.sweep.queue import TrialQueue

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        q = TrialQueue.remote(["a", "b", "c"])
        assert ray.get(q.next.remote(0)) == "a" and ray.get(q.next.remote(1)) == "b"
        assert ray.get(q.next.remote(0)) == "a"          # lane 0 restarted: its trial again
        ray.get(q.done.remote(0, "a", "finished", 5.0))
        assert ray.get(q.last_end.remote(0)) == 5.0 and ray.get(q.last_end.remote(1)) is None
        assert ray.get(q.next.remote(0)) == "c"
        ray.get(q.done.remote(0, "c", "failed", 6.0))
        assert ray.get(q.next.remote(0)) is None
        state = ray.get(q.state.remote())
        assert state["outcome"] == {"a": "finished", "c": "failed"} and state["taken"] == {1: "b"}
        assert state["lanes"] == {"a": 0, "b": 1, "c": 0}
    finally:
        ray.shutdown()


def test_rows_key_separates_what_changes_the_rows():
    decode = {"image_size": 16, "context_length": 8, "keep_rates": None, "filter_seed": 0,
              "syntax_tokens": None, "counter_name": "skips-a", "read_parallelism": 1, "tokenizer_path": "/a"}
    k = rows_key(["s0.tar"], b"tok", decode)
    assert k == rows_key(["s0.tar"], b"tok", {**decode, "counter_name": "skips-b", "read_parallelism": 4,
                                              "tokenizer_path": "/b"})
    assert k != rows_key(["s0.tar"], b"tok", {**decode, "image_size": 8})
    assert k != rows_key(["s0.tar"], b"tok", {**decode, "keep_rates": {"en": 1.0}})
    assert k != rows_key(["s0.tar"], b"other", decode)
    # the seeds draw nothing without a language filter or online curation (trials over seeds share rows)
    assert k == rows_key(["s0.tar"], b"tok", {**decode, "filter_seed": 3, "online_seed": 3})
    filtered = {**decode, "keep_rates": {"en": 0.5}}
    assert rows_key(["s0.tar"], b"tok", filtered) != rows_key(["s0.tar"], b"tok", {**filtered, "filter_seed": 3})
    online = {**decode, "online_epochs": 4, "online_seed": 0}
    assert rows_key(["s0.tar"], b"tok", online) != rows_key(["s0.tar"], b"tok", {**online, "online_seed": 3})


def test_checkpoint_names_sort_in_time_like_ray_trains():
    assert checkpoint_name(1000.0) < checkpoint_name(1000.5) < checkpoint_name(10_000.0)
    assert checkpoint_name(0.0) == "checkpoint_1970-01-01_00-00-00.000000"


@pytest.mark.long
def test_a_lane_whose_worker_is_killed_continues_its_trial_from_the_checkpoint(packed, tiny_pool, tmp_path):
    """One lane, two trials; the lane's worker process is killed once the second trial has
    checkpointed. Ray Train restarts the lane, the queue hands it the same trial, which resumes
    from its own newest checkpoint and ends on the losses of the undisturbed run (the same
    trial in the ``packed`` sweep)."""
    import time

    import psutil

    sweep = {"name": "lanekill", "pack_trials": True, "max_concurrent_trials": 1,
             "base": base(tiny_pool, tmp_path / "runs"), "axes": {"seed": [0, 1]}}
    sweep["base"]["train"]["max_failures"] = 2
    (tmp_path / "lanekill.yaml").write_text(yaml.safe_dump(sweep))
    env = {**os.environ, "WANDB_MODE": "offline", "RAY_AUTH_MODE": "disabled"}
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "clipscale.cli", "sweep", str(tmp_path / "lanekill.yaml")],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    root = tmp_path / "runs" / "lanekill"
    killed, deadline = None, time.time() + 500
    while killed is None and time.time() < deadline and proc.poll() is None:
        ids = json.loads((root / "sweep.json").read_text())["trials"] if (root / "sweep.json").exists() else []
        second = [t for t in ids if (root / t).is_dir() and not list((root / "results").glob(f"part-{t}-*"))]
        started = [t for t in ids if (root / t).is_dir()]
        if len(started) == 2 and second and commit.checkpoint_folders(str(root / second[0])):
            for p in psutil.Process(proc.pid).children(recursive=True):
                try:
                    if "RayTrainWorker" in " ".join(p.cmdline()):
                        p.kill()
                        killed = second[0]
                        break
                except psutil.Error:
                    continue
        time.sleep(0.2)
    assert killed, "the lane's worker was not found to kill while the second trial ran"
    assert proc.wait(timeout=600) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    df = read_results(root / "results")
    assert sorted(df.loc[df["status"] == "finished", "run_id"]) == sorted(json.loads((root / "sweep.json").read_text())["trials"])
    assert df.groupby(["run_id", "samples_seen"]).size().max() == 1  # every row once
    from clipscale.train.attempts import read_attempts
    attempts = read_attempts(root / killed)
    assert len(attempts) == 2 and attempts[1]["resumed_samples_seen"] > 0
    seed = json.loads((root / "sweep.json").read_text())["params"][killed]["seed"]
    ref_root = packed / "runs" / "packed"
    params = json.loads((ref_root / "sweep.json").read_text())["params"]
    (ref,) = [t for t, p in params.items() if p["seed"] == seed and p["image_size"] == 16]
    ref_row = read_results(ref_root / "results").set_index("run_id").loc[ref]
    got = df.set_index("run_id").loc[killed]
    assert got["loss"] == pytest.approx(ref_row["loss"], rel=1e-4)
    assert got["zeroshot_top1_mean"] == pytest.approx(ref_row["zeroshot_top1_mean"], abs=1e-6)
