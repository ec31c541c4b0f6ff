"""A real smoke sweep on Ray Tune (sweeps/smoke.yaml: 2 tiny-s trials, each a 2-worker Ray Train
run with DeepSpeed ZeRO-2 on CPU, W&B offline), interrupted by killing the driver's process
group mid-sweep and resumed. One sweep serves every test here: the suite pays for it once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipscale.results import read_results
from processes import kill_tree

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def sweep_cli(pool: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "RAY_AUTH_MODE": "disabled"}
    args = [sys.executable, "-m", "clipscale.cli", "sweep", str(REPO / "sweeps" / "smoke.yaml"),
            "--set", f"output_dir={out}", "--data.train_shards", str(pool / "pool"),
            "--eval.eval_dir", str(pool / "eval"), *extra]
    log = open(out / f"driver-{len(list(out.glob('driver-*')))}.log", "w")
    return subprocess.Popen(args, cwd=REPO, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def interrupted_sweep(tiny_pool, tmp_path_factory):
    """Run the smoke sweep one trial at a time; kill the driver (and its local Ray cluster) once
    the first trial has finished and the second has registered a checkpoint; then resume it."""
    pool = tiny_pool
    out = tmp_path_factory.mktemp("sweep")
    root = out / "smoke"
    proc = sweep_cli(pool, out, "--max-concurrent-trials", "1")
    deadline = time.time() + 480
    second_started = False
    while time.time() < deadline and proc.poll() is None:
        finished = list((root / "results").glob("part-*-finished.parquet"))
        if finished:
            other = [d for d in root.glob("smoke-*") if d.is_dir() and not finished[0].name.startswith(f"part-{d.name}")]
            # Train V2 has registered a checkpoint once its snapshot file is written (a
            # checkpoint_* folder alone may still be mid-copy, and then the trial restarts)
            if other and (other[0] / "checkpoint_manager_snapshot.json").exists():
                second_started = True
                break
        time.sleep(0.5)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    assert second_started, "the second trial did not checkpoint in time"
    kill_tree(proc.pid)
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (root / "results").glob("part-*.parquet")}
    timings_before = {p.name: p.read_text() for p in (root / "timings").glob("*.json")}

    resumed = sweep_cli(pool, out, "--resume")
    assert resumed.wait(timeout=480) == 0, (out / "driver-1.log").read_text()[-3000:]
    return {"root": root, "rows_before_kill": before, "timings_before": timings_before, "out": out}


def test_smoke_sweep_yields_one_finished_row_per_trial(interrupted_sweep):
    root = interrupted_sweep["root"]
    trials = json.loads((root / "sweep.json").read_text())["trials"]
    df = read_results(root / "results")
    assert sorted(df["run_id"]) == sorted(trials) and len(trials) == 2
    assert set(df["status"]) == {"finished"} and set(df["sweep"]) == {"smoke"}
    assert set(df["samples_seen"]) == {1536} and set(df["stages"]) == {2}
    # stage 0 (swept by image_tokens) and the fine-tuning stage (32 px, 30% random masking)
    assert sorted(df["stage0_image_tokens"]) == [4, 16] and set(df["stage0_text_tokens"]) == {8}
    assert set(df["image_tokens"]) == {11} and set(df["stage1_image_tokens"]) == {11}
    assert set(df["image_reduction"]) == {"random"} and set(df["text_tokens"]) == {16}
    assert df["stage0_train_flops_per_sample"].nunique() == 2
    for _, r in df.iterrows():
        assert r["stage0_compute"] == 1024 * r["stage0_train_flops_per_sample"]
        assert r["stage1_compute"] == 512 * r["stage1_train_flops_per_sample"]
        assert r["compute"] == pytest.approx(r["stage0_compute"] + r["stage1_compute"])
    # zero-shot top-1 is counted over the 40 eval images of each language (tiny_pool: 20 classes x 2)
    # and the mean is over the 14 languages: a broken or partial evaluation fails these
    langs = [c for c in df.columns if c.startswith("zeroshot_top1_") and c not in ("zeroshot_top1_mean", "zeroshot_top1_non_en")]
    assert len(langs) == 14
    for _, r in df.iterrows():
        assert all(abs(r[c] * 40 - round(r[c] * 40)) < 1e-4 for c in langs)
        assert r["zeroshot_top1_mean"] == pytest.approx(sum(r[c] for c in langs) / 14, abs=1e-6)
    for trial in trials:  # each trial logged its own W&B run (offline), grouped by the sweep
        assert list((root / trial / "wandb").glob("offline-run-*/run-*.wandb"))


def test_resume_skips_finished_trials_and_loses_nothing(interrupted_sweep):
    root = interrupted_sweep["root"]
    before = interrupted_sweep["rows_before_kill"]
    (finished_part,) = before
    after = {p.name: p.stat().st_mtime_ns for p in (root / "results").glob("part-*.parquet")}
    assert after[finished_part] == before[finished_part]         # the finished trial's row is untouched
    done_trial = finished_part.removeprefix("part-").rsplit("-", 2)[0]
    timings = {p.name: json.loads(p.read_text()) for p in (root / "timings").glob("*.json")}
    # the finished trial was not rerun: its timing record is the one from before the kill
    assert json.dumps(timings[f"{done_trial}.json"]) == json.dumps(
        json.loads(interrupted_sweep["timings_before"][f"{done_trial}.json"]))
    # the interrupted trial continued from its own checkpoint
    (other,) = [t for name, t in timings.items() if not name.startswith(done_trial)]
    assert other["resumed"] is True
    # its timing record splits its wall into phases (train/timing.py), with training in it
    from clipscale.train.timing import split
    phases = split(other)
    assert abs(sum(phases.values()) - (other["fit_end"] - other["start"])) < 1e-6
    assert phases["train"] > 0 and other["attempts"][-1]["samples"] > 0
    log = (interrupted_sweep["out"] / "driver-1.log").read_text()
    assert "1 trials to run (1 already finished)" in log
    assert "resumed at step" in log
