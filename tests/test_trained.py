"""Loading trained models: ZeRO stage 0-3 checkpoints written by 2 gloo processes through the trainer's own
engine builder are consolidated into the model's weights; corrupt or incomplete checkpoints name the file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clipscale.trained import CheckpointError, classify, consolidated_state_dict, last_checkpoint

REPO = Path(__file__).resolve().parents[1]

# Each rank builds the engine exactly as a training worker does (train/engine.py), from the same seed,
# and both save their shards into one folder per stage, as Ray's merged checkpoint holds them.
SAVE_SHARDS = r"""
import json, os, sys, torch, torch.distributed as dist
from clipscale.config import build_run_config
from clipscale.models.clip import CLIP
from clipscale.train.engine import build_engine
from clipscale.train.plan import model_spec

out = sys.argv[1]
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.set_num_threads(1)
for stage in (0, 1, 2, 3):
    cfg = build_run_config({"name": "z", "data": {"train_shards": out},
                            "model": {"name": "tiny-s"}, "stages": [{"image_size": 32}],
                            "train": {"samples_seen": 64, "global_batch_size": 4, "num_workers": 2,
                                      "zero_stage": stage}})
    torch.manual_seed(stage)
    reference = CLIP(model_spec(cfg, vocab_size=512)).state_dict()
    torch.manual_seed(stage)
    engine, _, _ = build_engine(cfg, vocab_size=512, world=2)
    folder = os.path.join(out, f"stage{stage}")
    engine.save_checkpoint(folder, tag="ckpt")
    if rank == 0:
        torch.save(reference, os.path.join(folder, "reference.pt"))
        with open(os.path.join(folder, "train_state.json"), "w") as f:
            json.dump({"step": 0, "samples_seen": 0}, f)
    dist.barrier()
    del engine
dist.destroy_process_group()
"""


@pytest.fixture(scope="module")
def zero_checkpoints(tmp_path_factory):
    out = tmp_path_factory.mktemp("zero")
    script = out / "save_shards.py"
    script.write_text(SAVE_SHARDS)
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29731", str(script), str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_zero_shards_consolidate_to_the_model_weights(zero_checkpoints, stage):
    folder = zero_checkpoints / f"stage{stage}"
    shards = sorted(p.name for p in (folder / "ckpt").iterdir())
    if stage > 0:  # one optimizer shard per rank
        assert sum("optim_states" in s for s in shards) == 2, shards
    reference = torch.load(folder / "reference.pt")
    state = consolidated_state_dict(folder)
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert state[key].dtype == torch.float32
        torch.testing.assert_close(state[key], value, rtol=0, atol=0, msg=key)
    assert classify(folder) == "checkpoint"


@pytest.mark.slow
def test_truncated_shard_is_an_error_naming_the_file(zero_checkpoints, tmp_path):
    import shutil

    folder = tmp_path / "ckpt_copy"
    shutil.copytree(zero_checkpoints / "stage2", folder)
    shard = folder / "ckpt" / "zero_pp_rank_1_mp_rank_00_optim_states.pt"
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="zero_pp_rank_1_mp_rank_00_optim_states.pt"):
        consolidated_state_dict(folder)
    shard.unlink()  # a rank's shard missing altogether
    with pytest.raises(CheckpointError, match="ZeRO shards"):
        consolidated_state_dict(folder)


def test_missing_or_bad_checkpoint_files_name_them(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint_"):
        last_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="neither a run folder"):
        classify(tmp_path)
    ck = tmp_path / "checkpoint_000001"
    ck.mkdir()
    (ck / "train_state.json").write_text("{not json")
    assert classify(ck) == "checkpoint"
    with pytest.raises(CheckpointError, match=r"ckpt: missing"):
        consolidated_state_dict(ck)
    (ck / "ckpt").mkdir()
    (ck / "ckpt" / "mp_rank_00_model_states.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="mp_rank_00_model_states.pt: corrupt or truncated"):
        consolidated_state_dict(ck)
    from clipscale.trained import read_train_state
    with pytest.raises(CheckpointError, match="train_state.json: not valid JSON"):
        read_train_state(ck)
    assert last_checkpoint(tmp_path) == ck
