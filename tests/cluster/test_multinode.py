"""Multi-node for real: a head and a worker Ray node (separate `ray start` processes, 4 and 2
CPUs), the smoke sweep submitted with `ray job submit` as the cluster guide does, its trials'
workers spread over both nodes, the worker node killed mid-trial. The trials must finish on the
head alone, resumed from their last checkpoints, with every result row and checkpoint on the
shared storage path.

About 5 minutes on 2 cores: it runs in the cluster suite (scripts/test_cluster.sh), which CI
runs after the default suite."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from local_cluster import LocalCluster  # tests/cluster/local_cluster.py

from clipscale import storage
from clipscale.results import read_results
from clipscale.train.attempts import read_attempts

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 900


def log_tail(path: Path, lines: int = 40) -> str:
    """The job log's last lines, without the long metric dumps of Ray's report lines."""
    kept = [ln[:300] for ln in path.read_text().splitlines() if "results/" not in ln and ln.strip()]
    return "\n".join(kept[-lines:])


def trial_dirs(root: Path) -> list[Path]:
    return sorted(d for d in root.glob("smoke-*") if d.is_dir())


def finished(root: Path, trial: str) -> bool:
    return any((root / "results").glob(f"part-{trial}-*-finished.parquet"))


def latest_attempt(run_dir: Path) -> list[dict]:
    """The ranks of the run's newest attempt (the last `world_size` records, by start time)."""
    recs = read_attempts(str(run_dir)) if (run_dir / "attempts").is_dir() else []
    return recs[-recs[-1]["world_size"]:] if recs else []


@pytest.fixture(scope="module")
def node_loss(tiny_pool, tmp_path_factory):
    pool = tiny_pool
    work = tmp_path_factory.mktemp("multinode")
    shared = work / "shared"          # the storage path every node reads and writes
    root = shared / "smoke"
    cluster = LocalCluster(work / "logs", env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    try:
        cluster.start_head(num_cpus=4)
        cluster.add_worker("worker", num_cpus=2)
        ids = cluster.node_ids()
        assert set(ids) == {"head", "worker"}, ids
        job_log = work / "job.log"
        job = cluster.submit(
            ["clipscale", "sweep", "sweeps/smoke.yaml", "--set", f"output_dir={shared.as_uri()}",
             "--data.train_shards", str(pool / "pool"), "--eval.eval_dir", str(pool / "eval"),
             "--train.placement_strategy", "SPREAD", "--train.max_failures", "3"],
            job_log, working_dir=REPO)

        # Kill the worker node once a trial that is still training has a registered
        # checkpoint and ranks on that node.
        victim, killed_at, before = None, None, {}
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline and job.poll() is None and victim is None:
            for d in trial_dirs(root):
                ranks = latest_attempt(d)
                if ((d / "checkpoint_manager_snapshot.json").exists() and not finished(root, d.name)
                        and ids["worker"] in {r["node_id"] for r in ranks}):
                    victim, before = d.name, {t.name: latest_attempt(t) for t in trial_dirs(root)}
                    cluster.kill("worker")
                    killed_at = time.time()
                    break
            time.sleep(0.5)
        assert victim, "no trial checkpointed with a rank on the worker node:\n" + log_tail(job_log)
        rc = job.wait(timeout=max(60, deadline - time.time()))
        assert rc == 0, log_tail(job_log)
        alive_after = cluster.node_ids()
        yield {"root": root, "ids": ids, "victim": victim, "killed_at": killed_at,
               "before": before, "alive_after": alive_after, "job_log": job_log.read_text()}
    finally:
        cluster.stop()


def test_trials_spread_over_both_nodes(node_loss):
    ids = node_loss["ids"]
    nodes = {r["node_id"] for ranks in node_loss["before"].values() for r in ranks}
    assert nodes == {ids["head"], ids["worker"]}
    assert len(node_loss["before"]) == 2  # both smoke trials had started before the kill


def test_worker_node_is_gone(node_loss):
    assert set(node_loss["alive_after"]) == {"head"}


def test_killed_trial_resumed_from_its_checkpoint_on_the_head(node_loss):
    root, ids = node_loss["root"], node_loss["ids"]
    recs = read_attempts(str(root / node_loss["victim"]))
    after = [r for r in recs if r["start_time"] > node_loss["killed_at"]]
    assert after, "the killed trial never started again"
    resumed = after[-after[-1]["world_size"]:]
    assert {r["node_id"] for r in resumed} == {ids["head"]}
    assert all(r["resumed_samples_seen"] >= 512 for r in resumed)  # checkpoint_every_samples
    assert len({r["resumed_step"] for r in resumed}) == 1


def test_every_row_and_checkpoint_is_on_the_shared_path(node_loss):
    root = node_loss["root"]
    trials = json.loads(storage.read_text(str(root / "sweep.json")))["trials"]
    df = read_results(str(root / "results"))
    done = df[df["status"] == "finished"]
    assert sorted(done["run_id"]) == sorted(trials) and len(trials) == 2
    assert set(done["samples_seen"]) == {1536}
    assert (df["status"] != "failed").all()
    for trial in trials:
        run = root / trial
        assert (run / "checkpoint_manager_snapshot.json").is_file()
        ckpts = sorted(d for d in run.glob("checkpoint_*") if d.is_dir())
        assert ckpts, f"{run}: no checkpoint"
        # the newest checkpoint holds the whole state: train state, both ranks' RNG, DeepSpeed shards
        newest = ckpts[-1]
        state = json.loads((newest / "train_state.json").read_text())
        assert state["samples_seen"] >= 512
        assert {p.name for p in newest.glob("rng_rank*.pt")} == {"rng_rank0.pt", "rng_rank1.pt"}
