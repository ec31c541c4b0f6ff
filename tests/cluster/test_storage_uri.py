"""A run whose storage is a URI (``output_dir: file:///...``, the same pyarrow calls as s3:// and
gs://): checkpoints, results rows and run files all land there, nothing in the run folder is
written with plain file I/O, and ``--resume`` from the URI continues the run after its driver and
local Ray were killed, reproducing the uninterrupted run's golden loss curve.

About 3 minutes on 2 cores: it runs in the cluster suite (scripts/test_cluster.sh)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clipscale import storage
from clipscale.results import read_results

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]


def test_run_on_a_uri_checkpoints_there_and_resumes_from_it(tiny_pool, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from processes import kill_tree  # tests/processes.py
    from test_train import run_cli, tiny_config, write_yaml  # tests/test_train.py

    pool = tiny_pool  # the pool of the golden loss curve
    shared = tmp_path / "shared"
    out = shared.as_uri()                      # file:///.../shared
    cfg = tiny_config(pool, tmp_path, "ref")
    cfg["output_dir"] = out
    yaml_file = write_yaml(cfg, tmp_path / "ref.yaml")
    env = {"CLIPSCALE_LOCAL_DIR": str(tmp_path / "node")}
    run = shared / "ref"

    log0 = tmp_path / "driver-0.log"
    with open(log0, "w") as log:
        proc = run_cli(["train", str(yaml_file)], env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 400
    # Train V2 has registered a checkpoint once its snapshot file is written
    while not (run / "checkpoint_manager_snapshot.json").exists() and time.time() < deadline:
        assert proc.poll() is None, log0.read_text()[-3000:]
        time.sleep(0.5)
    assert (run / "checkpoint_manager_snapshot.json").exists(), "no checkpoint was registered"
    kill_tree(proc.pid)  # the driver and its local Ray die mid-run
    proc.wait()
    rows = read_results(out + "/results") if storage.list_files(out + "/results") else None
    assert rows is None or rows["samples_seen"].max() < 4096

    log1 = tmp_path / "driver-1.log"
    with open(log1, "w") as log:
        resumed = run_cli(["train", str(yaml_file), "--resume"], env, stdout=log, stderr=subprocess.STDOUT)
    assert resumed.wait(timeout=600) == 0, log1.read_text()[-3000:]
    assert "resumed at step" in log1.read_text()

    # every row is on the URI, and the resumed run reproduces the uninterrupted run's curve
    got = read_results(out + "/results").drop_duplicates("samples_seen", keep="last")
    assert list(got["samples_seen"]) == [2048, 4096] and got["status"].iloc[-1] == "finished"
    golden = json.loads((REPO / "tests" / "assets" / "losses" / "tiny_s_zero2.json").read_text())
    assert got["loss"].tolist() == pytest.approx(golden["loss"], rel=1e-3)

    # run files, tokenizer and checkpoints on the URI; the workers read the tokenizer from there
    info = json.loads(storage.read_text(f"{out}/ref/run_info.json"))
    assert info["tokenizer_path"] == f"{out}/ref/tokenizer.model"
    assert json.loads(storage.read_text(f"{out}/ref/run_config.json"))["output_dir"] == out
    assert storage.is_file(info["tokenizer_path"])
    assert [d for d in run.glob("checkpoint_*") if d.is_dir()]
    # W&B's files stay in the node's scratch folder, never in the run folder on the storage
    assert not (run / "wandb").exists()
    assert list((tmp_path / "node" / "wandb" / "ref" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert list((tmp_path / "node" / "cache").glob("*/tokenizer.model"))  # fetched once per node
