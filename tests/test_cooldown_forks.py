"""Cooldown forks run by `clipscale sweep` (sweep/fork_launch.py, train/fork.py): the layout of
trunks and forks, and one real forked sweep (tiny-s, 2 Ray Train workers, ZeRO-2 on CPU) whose
fork is killed after its own first checkpoint and resumed with --resume, compared with a fresh
run of the same wsd schedule."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from clipscale.config import build_run_config
from clipscale.errors import CheckpointError
from clipscale.results import read_results
from clipscale.sweep.fork_launch import fork_layout
from clipscale.sweep.forks import plan_forks
from clipscale.sweep.sweep import load
from clipscale.train.attempts import read_attempts
from clipscale.train.cadence import Cadence
from clipscale.train.fork import fork_columns, fork_dir, fork_origin
from processes import kill_tree
from test_train import PROMPT_REGISTRATION

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [2048, 4096]     # fork 2048 leaves the trunk (4096) at 1024, cooldown share 0.5
FORK_AT = 1024
# The fork's first own checkpoint comes one step after the fork point, so 15 of its 16 steps are
# left when the test kills it: on an idle machine those take ~2 s, and the kill must land first.
FIRST_OWN_CHECKPOINT = 1088
RAY_START_TIMEOUT = "The current node timed out during startup"


def sweep_file(pool: Path, out: Path, samples=SAMPLES) -> Path:
    spec = {"name": "forks", "base": {
        "output_dir": str(out),
        "data": {"train_shards": str(pool / "pool"), "shuffle_buffer": 256, "read_parallelism": 2},
        "model": {"name": "tiny-s"}, "tokenizer": {"vocab_size": 512, "train_samples": 1600},
        "stages": [{"image_size": 32, "text_tokens": 16}],
        "train": {"global_batch_size": 64, "lr": 2e-3, "warmup_samples": 512, "schedule": "wsd",
                  "cooldown_share": 0.5, "zero_stage": 2, "num_workers": 2,
                  "checkpoint_every_samples": FIRST_OWN_CHECKPOINT, "max_failures": 2},
        "eval": {"eval_dir": str(pool / "eval"), "every_samples": 100_000, "batch_size": 128},
        "logging": {"wandb_mode": "offline"}},
        "axes": {"samples_seen": samples}}
    path = out / "forks.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_layout_one_trunk_per_group_and_forks_start_from_its_copies(tmp_path):
    (tmp_path / "pool").mkdir()
    sweep = load(sweep_file(tmp_path, tmp_path, [1024, 4096, 2048, 4096 + 64 * 3]))
    layout = fork_layout(sweep.trials)
    trunk_id, trunk_cfg = next((t.id, c) for t, c in layout.first)
    assert trunk_cfg.train.samples_seen == 4288 and len(layout.first) == 1
    # each fork's cooldown start, rounded down to a step of 64 samples
    assert trunk_cfg.train.fork_points == [512, 1024, 2048]
    assert {c.train.samples_seen: c.train.init_from for _, c in layout.forks} == {
        s: fork_dir(trunk_cfg.run_dir, s // 2) for s in (1024, 2048, 4096)}
    assert set(layout.trunk_of.values()) == {trunk_id}
    plan = plan_forks([c.train.samples_seen for _, c in sweep.trials], 0.5, 64)
    assert plan.fork_points == (512, 1024, 2048, 2112) and plan.trunk_samples == 2112


def test_a_cosine_sweep_has_no_forks(tmp_path):
    (tmp_path / "pool").mkdir()
    path = sweep_file(tmp_path, tmp_path)
    sweep = load(path, ["train.schedule=cosine"])
    layout = fork_layout(sweep.trials)
    assert not layout.forks and [c for _, c in layout.first] == sweep.configs


def test_trunk_checkpoints_at_fork_points_and_fork_rows_name_the_trunk():
    cfg = build_run_config({"data": {"train_shards": "x"}, "train": {
        "samples_seen": 4096, "global_batch_size": 64, "checkpoint_every_samples": 1280,
        "schedule": "wsd", "fork_points": [1024]}})
    cadence = Cadence.from_config(cfg, evaluate=False)
    assert [s for s in range(64, 4097, 64) if cadence.should_checkpoint(s - 64, s)] == [1024, 1280, 2560, 3840, 4096]
    with pytest.raises(Exception, match="fork_points: 1000 is not a step boundary"):
        build_run_config({"data": {"train_shards": "x"}, "train": {"fork_points": [1000], "global_batch_size": 64}})
    where = fork_dir("/runs/sweep/forks-001-abc", 1024)
    assert fork_origin(where) == ("forks-001-abc", 1024)
    assert fork_columns(where) == {"forked_from": "forks-001-abc", "fork_samples": 1024}
    assert fork_columns(None) == {} and fork_columns("/ckpt/x") == {"forked_from": "/ckpt/x", "fork_samples": -1}


def test_init_from_a_missing_or_incomplete_checkpoint_is_refused(tmp_path):
    from clipscale.train.fork import init_checkpoint

    with pytest.raises(CheckpointError, match="train.init_from: .* is not a checkpoint folder"):
        init_checkpoint(str(tmp_path / "nothing"))
    (tmp_path / "half").mkdir()
    with pytest.raises(CheckpointError, match="train.init_from: .* is incomplete: no commit marker"):
        init_checkpoint(str(tmp_path / "half"))


def sweep_cli(path: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "RAY_AUTH_MODE": "disabled", **PROMPT_REGISTRATION}
    log = open(out / f"driver-{len(list(out.glob('driver-*')))}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "clipscale.cli", "sweep", str(path), *extra], cwd=REPO,
                            env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def forked_sweep(tiny_pool, tmp_path_factory):
    """The forked sweep, its driver killed once the fork registered its own first checkpoint
    (1088 samples; it left the trunk at 1024), then resumed."""
    out = tmp_path_factory.mktemp("forks")
    path = sweep_file(tiny_pool, out)
    sweep = load(path)
    layout = fork_layout(sweep.trials)
    (fork_trial, fork_cfg), = layout.forks
    (trunk_trial, trunk_cfg), = layout.first
    proc = sweep_cli(path, out, "--max-concurrent-trials", "1")
    t0, deadline = time.time(), time.time() + 900
    snapshot = Path(fork_cfg.run_dir) / "checkpoint_manager_snapshot.json"
    while time.time() < deadline and proc.poll() is None and not snapshot.exists():
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before its fork could be interrupted"
    assert snapshot.exists(), "the fork did not checkpoint in time"
    # The driver's machine dies: the driver and every process it started (its local Ray: GCS,
    # raylet, the Train workers) at once. Killing the driver's group alone leaves the workers
    # running until they notice, and on an idle machine they finish the fork's last 15 steps.
    kill_tree(proc.pid)
    proc.wait()
    first_wall = time.time() - t0
    timings_before = (Path(sweep.root) / "timings" / f"{trunk_trial.id}.json").read_text()
    t1 = time.time()
    resumed = sweep_cli(path, out, "--resume")
    if resumed.wait(timeout=900) != 0 and RAY_START_TIMEOUT in (out / "driver-1.log").read_text():
        # Ray 2.60 gives its raylet 30 s to register (ray/_private/node.py); a loaded shared
        # machine has exceeded that. Nothing of the sweep ran then: resume again.
        resumed = sweep_cli(path, out, "--resume")
        assert resumed.wait(timeout=900) == 0, (out / "driver-2.log").read_text()[-3000:]
    assert resumed.returncode == 0, (out / "driver-1.log").read_text()[-3000:]
    print(f"forked sweep: {first_wall:.0f} s until killed, {time.time() - t1:.0f} s to resume")
    return {"sweep": sweep, "out": out, "trunk": (trunk_trial, trunk_cfg), "fork": (fork_trial, fork_cfg),
            "timings_before": timings_before}


@pytest.mark.slow
@pytest.mark.long
def test_forked_sweep_runs_the_trunk_then_the_fork_and_resumes_it_from_its_own_checkpoint(forked_sweep):
    sweep = forked_sweep["sweep"]
    (trunk, trunk_cfg), (fork, fork_cfg) = forked_sweep["trunk"], forked_sweep["fork"]
    df = read_results(sweep.table_dir)
    fin = df[df["status"] == "finished"].set_index("run_id")
    assert set(fin.index) == {trunk.id, fork.id}
    assert fin.loc[fork.id, "forked_from"] == trunk.id and fin.loc[fork.id, "fork_samples"] == FORK_AT
    assert fin.loc[fork.id, "samples_seen"] == 2048 and fin.loc[trunk.id, "samples_seen"] == 4096
    per_sample = fin.loc[fork.id, "train_flops_per_sample"]
    # the trunk's compute up to the fork point plus the fork's own cooldown
    assert fin.loc[fork.id, "compute"] == pytest.approx(2048 * per_sample, rel=1e-12)
    assert fin.loc[trunk.id, "compute"] == pytest.approx(4096 * per_sample, rel=1e-12)
    # the fork's first attempt restored the trunk's copy; after the kill, its own checkpoint
    starts = [a["resumed_samples_seen"] for a in read_attempts(fork_cfg.run_dir) if a["rank"] == 0]
    assert starts[0] == FORK_AT and len(starts) >= 2 and all(s >= FIRST_OWN_CHECKPOINT for s in starts[1:]), starts
    assert (Path(trunk_cfg.run_dir) / "forks" / f"at_{FORK_AT}" / "commit_rank1.json").is_file()
    # the finished trunk was not run again on --resume
    timing = Path(sweep.root) / "timings" / f"{trunk.id}.json"
    assert timing.read_text() == forked_sweep["timings_before"]
    log = sorted(forked_sweep["out"].glob("driver-*.log"))[-1].read_text()
    assert "1 trials to run (1 already finished)" in log


@pytest.mark.slow
@pytest.mark.long
def test_the_fork_ends_where_a_fresh_run_of_its_schedule_ends(forked_sweep, tmp_path):
    from clipscale.config import RunConfig
    from clipscale.train.launch import train

    (fork, fork_cfg) = forked_sweep["fork"]
    data = fork_cfg.model_dump(mode="json")
    data.update(name="fresh", output_dir=str(tmp_path), results_dir=str(tmp_path / "results"))
    data["train"]["init_from"] = None
    result = train(RunConfig.model_validate(data))
    assert result.error is None
    fresh = read_results(tmp_path / "results")
    forked = read_results(forked_sweep["sweep"].table_dir)
    want = fresh[fresh["status"] == "finished"].iloc[-1]
    got = forked[(forked["run_id"] == fork.id) & (forked["status"] == "finished")].iloc[-1]
    print(f"fork {got['loss']!r} fresh {want['loss']!r}")
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-4, abs=1e-4)
    assert got["zeroshot_top1_mean"] == pytest.approx(want["zeroshot_top1_mean"], abs=1e-6)
    assert got["compute"] == pytest.approx(want["compute"], rel=1e-12)


@pytest.mark.slow
@pytest.mark.long
def test_analysis_reads_fork_rows_as_ordinary_runs(forked_sweep):
    from analysis.load import finals, load_parquet

    ends = finals(load_parquet(forked_sweep["sweep"].table_dir)).set_index("samples_seen")
    assert list(ends.index) == [2048, 4096] and ends["compute"].is_monotonic_increasing
    assert ends.loc[2048, "forked_from"] == forked_sweep["trunk"][0].id and ends.loc[4096, "forked_from"] == ""
