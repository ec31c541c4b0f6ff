"""One checkpoint carries everything needed to resume: DeepSpeed's model and ZeRO optimizer
shards, the step, samples seen, the data position and every RNG.

Each rank saves into its own temporary folder and hands it to ``ray.train.report``; Ray merges
the ranks' files into one checkpoint on the storage path (DeepSpeed names its shard files by
rank, so they do not collide). On restore, each rank reads its own files from the merged folder.
"""
from __future__ import annotations

import json
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

TAG = "ckpt"


@dataclass
class TrainState:
    step: int = 0
    samples_seen: int = 0
    stage: int = 0               # index of the current stage
    epoch: int = 0               # data epoch within the current stage
    batch_in_epoch: int = 0      # batches of that epoch already consumed
    compute: float = 0.0         # training FLOPs so far, summed over stages
    wall_time_s: float = 0.0     # training wall time before this process started


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save(engine, state: TrainState, rank: int, extra_rng: dict | None = None) -> str:
    """Write this rank's part of the checkpoint to a new temp folder; returns the folder."""
    d = tempfile.mkdtemp(prefix=f"clipscale-ckpt-r{rank}-")
    engine.save_checkpoint(d, tag=TAG, save_latest=(rank == 0))
    torch.save({"rng": rng_state(), "extra_rng": extra_rng or {}}, Path(d) / f"rng_rank{rank}.pt")
    if rank == 0:
        (Path(d) / "train_state.json").write_text(json.dumps(asdict(state), indent=1))
    return d


def restore(engine, folder: str | Path, rank: int) -> tuple[TrainState, dict]:
    """Load weights, optimizer and RNG into this rank; returns the train state and extra RNG."""
    folder = Path(folder)
    load_path, _ = engine.load_checkpoint(str(folder), tag=TAG)
    if load_path is None:
        raise RuntimeError(f"{folder}: no DeepSpeed checkpoint with tag {TAG!r}")
    state = TrainState(**json.loads((folder / "train_state.json").read_text()))
    rng_file = folder / f"rng_rank{rank}.pt"
    extra = {}
    if rng_file.exists():  # a restart with a different worker count has no file for new ranks
        blob = torch.load(rng_file, weights_only=False)
        set_rng_state(blob["rng"])
        extra = blob["extra_rng"]
    return state, extra
