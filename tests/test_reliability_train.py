"""Faults during a real training run (tiny config, 2 Ray Train workers, DeepSpeed ZeRO-2 on CPU):
a driver killed after an evaluation whose checkpoint turns out damaged. Slow (~1-2 minutes)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clipscale.results import read_results
from clipscale.train.attempts import read_attempts
from processes import kill_tree
from test_train import PROMPT_REGISTRATION, REPO, run_cli, tiny_config, write_yaml

pytestmark = [pytest.mark.slow, pytest.mark.long]
GOLDEN = json.loads((REPO / "tests" / "assets" / "losses" / "tiny_s_zero2.json").read_text())


def registered_checkpoints(run_dir: Path) -> tuple[list[str], str | None]:
    """The checkpoints Ray Train V2 registered (its snapshot), and the one it calls latest."""
    snap = run_dir / "checkpoint_manager_snapshot.json"
    try:
        state = json.loads(snap.read_text())
    except (OSError, ValueError):
        return [], None
    latest = state.get("latest_checkpoint_result") or {}
    return [c["checkpoint_dir_name"] for c in state["checkpoint_results"]], latest.get("checkpoint_dir_name")


def test_killed_after_an_eval_with_a_damaged_latest_checkpoint_one_row_golden_end(tiny_pool, tmp_path):
    """The row at 2048 is written, then its checkpoint; the driver dies, and that checkpoint is
    damaged on the storage. The resume warns naming it, continues from the checkpoint at 1024,
    evaluates 2048 again, and the table holds that point once; the run ends on the golden curve."""
    cfg = write_yaml(tiny_config(tiny_pool, tmp_path, "rel"), tmp_path / "rel.yaml")
    run_dir = tmp_path / "rel"
    log = tmp_path / "first.log"
    proc = run_cli(["train", str(cfg)], PROMPT_REGISTRATION, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    names, latest = [], None
    while time.time() < deadline and proc.poll() is None:
        names, latest = registered_checkpoints(run_dir)
        if len(names) >= 2:
            break
        time.sleep(0.05)
    kill_tree(proc.pid)  # the machine dies: Ray's workers too, before they register more
    proc.wait()
    names, latest = registered_checkpoints(run_dir)  # as the kill left them
    assert len(names) == 2, f"not exactly 2 checkpoints registered at the kill ({names}):\n{log.read_text()[-3000:]}"
    first_rows = read_results(tmp_path / "results")
    assert 2048 in set(first_rows["samples_seen"]) and first_rows["samples_seen"].max() < 4096
    first_2048 = first_rows.set_index("samples_seen").loc[2048, "timestamp"]

    damaged = run_dir / latest
    shard = next(damaged.rglob("*optim_states.pt"))
    os.truncate(shard, shard.stat().st_size // 2)  # a half-copied upload

    time.sleep(1.1)  # the rewritten row gets a later timestamp (second resolution)
    resumed = run_cli(["train", str(cfg), "--resume"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      text=True)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    assert f"WARNING checkpoint {damaged} is incomplete: {shard.relative_to(damaged)} has" in out, out[-3000:]
    df = read_results(tmp_path / "results")
    assert list(df["samples_seen"]) == [2048, 4096] and list(df["status"]) == ["running", "finished"]
    assert len(list((tmp_path / "results").glob("part-rel-000000002048-*.parquet"))) == 1
    assert df.set_index("samples_seen").loc[2048, "timestamp"] > first_2048  # evaluated again
    resumes = sorted({a["resumed_samples_seen"] for a in read_attempts(str(run_dir))})
    assert resumes == [0, 1024]  # the second attempt continued from the complete older checkpoint
    assert df["loss"].tolist() == pytest.approx(GOLDEN["loss"], rel=1e-4)


def test_sigterm_checkpoints_within_the_grace_period_and_resume_stays_golden(tiny_pool, tmp_path):
    """SIGTERM to the driver (how a spot node or a pod is stopped): the workers save a checkpoint
    where they are and the driver exits with 143 before the grace period ends; --resume ends on
    the golden curve. The grace period is raised to 60 s here only for CI's two shared cores."""
    from clipscale.train import commit

    grace = 60
    cfg = write_yaml(tiny_config(tiny_pool, tmp_path, "pre", preemption_grace_s=grace), tmp_path / "pre.yaml")
    run_dir = tmp_path / "pre"
    log = tmp_path / "first.log"
    proc = run_cli(["train", str(cfg)], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not registered_checkpoints(run_dir)[0]:
        time.sleep(0.2)
    assert registered_checkpoints(run_dir)[0], f"no checkpoint registered in time:\n{log.read_text()[-3000:]}"
    time.sleep(2.0)  # somewhere between two periodic checkpoints
    t0 = time.time()
    os.kill(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=grace + 30)
    took = time.time() - t0
    out = log.read_text()
    assert code == 143 and took < grace, (code, took, out[-3000:])
    assert "stopped for preemption at samples_seen" in out and "grace period" in out
    stopped_at = int(out.split("stopped for preemption at samples_seen ")[1].split()[0])
    names, latest = registered_checkpoints(run_dir)
    assert commit.incomplete_reason(run_dir / latest) is None
    assert json.loads((run_dir / latest / "train_state.json").read_text())["samples_seen"] == stopped_at
    assert stopped_at < 4096 and not list((tmp_path / "results").glob("*-finished.parquet"))
    print(f"SIGTERM -> exit {code} in {took:.1f} s, checkpoint at samples_seen {stopped_at}")

    resumed = run_cli(["train", str(cfg), "--resume"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      text=True)
    rout, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, rout[-3000:]
    assert max(a["resumed_samples_seen"] for a in read_attempts(str(run_dir))) == stopped_at
    df = read_results(tmp_path / "results")
    assert list(df["samples_seen"]) == [2048, 4096]
    assert df["loss"].iloc[-1] == pytest.approx(GOLDEN["loss"][-1], rel=1e-4)
