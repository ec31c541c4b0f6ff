"""A chaos sweep: the smoke sweep (2 tiny trials) on a head + worker local cluster, submitted with
`ray job submit`, while a seeded chaos loop kills, at random moments once the trials have
checkpointed, a Ray Train worker, a trial driver, the sweep driver (then the sweep is submitted
again with --resume) and finally the worker node. Bounded: those four kills, TIMEOUT_S in all.

At the end every trial has its `finished` row exactly once, no attempt after a trial's first
checkpoint started from zero, every registered checkpoint on the shared path is complete, and the
final metrics equal those of the same sweep run undisturbed (loss rel 1e-4). The tally (kills of
each kind, restarts, rows) is printed. About 10-15 minutes on 2 cores.

Not yet part of the cluster suite CI runs: it has not passed end to end yet (its first full run
failed on a part-file name check, fixed since, and was not re-run). Run it on its own with
``bash scripts/test_cluster.sh -m chaos``."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import psutil
import pytest
from local_cluster import LocalCluster  # tests/cluster/local_cluster.py

from clipscale.results import read_results
from clipscale.train import commit
from clipscale.train.attempts import read_attempts

pytestmark = pytest.mark.chaos
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 1500
SEED = 14
KILLS = ("train_worker", "trial_driver", "sweep_driver", "worker_node")


def sweep_args(pool: Path, shared: Path, *extra: str) -> list[str]:
    return ["clipscale", "sweep", "sweeps/smoke.yaml", "--set", f"output_dir={shared.as_uri()}",
            "--data.train_shards", str(pool / "pool"), "--eval.eval_dir", str(pool / "eval"),
            "--train.placement_strategy", "SPREAD", "--train.max_failures", "4", *extra]


def cluster_processes(cluster: LocalCluster) -> list[psutil.Process]:
    """Processes of this test's cluster only (descendants of its `ray start` processes)."""
    procs = []
    for p in cluster.nodes.values():
        try:
            procs += psutil.Process(p.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            continue
    return procs


def find(cluster: LocalCluster, kind: str) -> psutil.Process | None:
    for p in cluster_processes(cluster):
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if kind == "train_worker" and "RayTrainWorker" in cmd:
            return p
        if kind == "trial_driver" and "ImplicitFunc" in cmd:
            return p
        if kind == "sweep_driver" and "clipscale" in cmd and " sweep " in f" {cmd} " and "job" not in cmd:
            return p
    return None


def checkpointed(root: Path) -> bool:
    return any(d.is_dir() and (d / "checkpoint_manager_snapshot.json").exists() for d in root.glob("smoke-*"))


def finished_rows(root: Path) -> list[Path]:
    return sorted((root / "results").glob("part-*-finished.parquet"))


def run_sweep(cluster, pool, shared, log, chaos: bool) -> dict:
    """Run the sweep to the end; with ``chaos``, kill one process of each kind on the way."""
    rng = random.Random(SEED)
    tally = {k: 0 for k in KILLS} | {"resubmits": 0}
    root = shared / "smoke"
    job = cluster.submit(sweep_args(pool, shared), log, working_dir=REPO)
    deadline = time.time() + TIMEOUT_S
    todo = list(KILLS) if chaos else []
    while time.time() < deadline:
        if job.poll() is not None:
            if len(finished_rows(root)) == 2 and job.returncode == 0:
                break
            tally["resubmits"] += 1  # the sweep driver died (or the job failed): --resume
            assert tally["resubmits"] <= 3, log.read_text()[-3000:]
            job = cluster.submit(sweep_args(pool, shared, "--resume"), log.with_suffix(f".{tally['resubmits']}.log"),
                                 working_dir=REPO)
            continue
        if todo and checkpointed(root) and len(finished_rows(root)) < 2:
            time.sleep(rng.uniform(2.0, 8.0))  # a random moment
            kind = todo[0]
            if kind == "worker_node":
                cluster.kill("worker")
                tally[kind] += 1
                todo.pop(0)
            else:
                victim = find(cluster, kind)
                if victim is not None:
                    try:
                        victim.kill()
                        tally[kind] += 1
                    except psutil.NoSuchProcess:
                        pass
                    todo.pop(0)
            continue
        time.sleep(0.5)
    assert len(finished_rows(root)) == 2, f"the sweep did not finish in {TIMEOUT_S} s: {tally}"
    return tally


@pytest.fixture(scope="module")
def chaos(tiny_pool, tmp_path_factory):
    work = tmp_path_factory.mktemp("chaos")
    out = {}
    for name, disturbed in (("calm", False), ("chaos", True)):
        cluster = LocalCluster(work / f"logs-{name}", env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
        try:
            cluster.start_head(num_cpus=4)
            cluster.add_worker("worker", num_cpus=2)
            shared = work / f"shared-{name}"
            out[name] = {"tally": run_sweep(cluster, tiny_pool, shared, work / f"{name}.log", disturbed),
                         "root": shared / "smoke"}
        finally:
            cluster.stop()
    return out


def test_chaos_sweep_loses_nothing_and_matches_the_calm_run(chaos):
    root, calm = chaos["chaos"]["root"], chaos["calm"]["root"]
    trials = json.loads((root / "sweep.json").read_text())["trials"]
    # every trial's finished row exactly once, in the files as on read
    names = [p.name for p in finished_rows(root)]
    # part-<run_id>-<samples_seen>-<status>.parquet (clipscale.results.part_name)
    assert sorted(n.removeprefix("part-").rsplit("-", 2)[0] for n in names) == sorted(trials)
    df = read_results(root / "results")
    assert (df[df["status"] == "finished"].groupby("run_id").size() == 1).all()
    restarts, from_zero = 0, []
    incomplete = []
    for trial in trials:
        run = root / trial
        recs = read_attempts(str(run))
        starts = sorted({round(r["start_time"], 1) for r in recs if r["rank"] == 0})
        restarts += len(starts) - 1
        ckpts = sorted(d for d in run.glob("checkpoint_*") if d.is_dir())
        first_ckpt = min((d / "commit_rank0.json").stat().st_mtime for d in ckpts if (d / "commit_rank0.json").exists())
        from_zero += [r for r in recs if r["start_time"] > first_ckpt + 1 and r["resumed_samples_seen"] == 0]
        snap = json.loads((run / "checkpoint_manager_snapshot.json").read_text())
        for c in snap["checkpoint_results"]:
            reason = commit.incomplete_reason(run / c["checkpoint_dir_name"])
            if reason:
                incomplete.append(f"{trial}/{c['checkpoint_dir_name']}: {reason}")
    tally = {**chaos["chaos"]["tally"], "restarts": restarts, "rows": len(df),
             "finished_rows": len(names)}
    print(f"\n[chaos] seed {SEED} tally: {json.dumps(tally)}")
    assert not from_zero, f"attempts restarted from zero after a checkpoint: {from_zero}"
    assert not incomplete, incomplete
    assert all(tally[k] == 1 for k in KILLS), tally
    ref = read_results(calm / "results").set_index(["run_id", "samples_seen"])
    got = df.set_index(["run_id", "samples_seen"])
    assert list(got.index) == list(ref.index)
    for key in ref.index:
        assert got.loc[key, "loss"] == pytest.approx(ref.loc[key, "loss"], rel=1e-4), key
