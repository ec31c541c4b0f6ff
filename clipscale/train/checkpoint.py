"""One checkpoint carries everything needed to resume: DeepSpeed's model and ZeRO optimizer
shards, the step, samples seen, the data position and every RNG a rank draws from (torch,
numpy, Python and the mask generator of the token reductions: ``WorkerRng``).

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


@dataclass
class WorkerRng:
    """Every random stream of one rank. The global torch / numpy generators drive the model's
    initialisation and dropout; ``mask`` draws the patch masks and text reductions
    (train/batches.py) and is kept apart so that evaluation or logging never shifts it."""
    mask: torch.Generator

    @classmethod
    def seeded(cls, seed: int, rank: int) -> WorkerRng:
        """Seed the global generators for this rank and make its mask generator."""
        torch.manual_seed(seed + rank)
        np.random.seed(seed + rank)
        return cls(mask=torch.Generator().manual_seed(seed * 31 + rank))

    def state(self) -> dict:
        return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                "python": random.getstate(), "mask": self.mask.get_state()}

    def load(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
        self.mask.set_state(state["mask"])


def save(engine, state: TrainState, rng: WorkerRng, rank: int) -> str:
    """Write this rank's part of the checkpoint to a new temp folder; returns the folder."""
    d = tempfile.mkdtemp(prefix=f"clipscale-ckpt-r{rank}-")
    engine.save_checkpoint(d, tag=TAG, save_latest=(rank == 0))
    torch.save({"rng": rng.state()}, Path(d) / f"rng_rank{rank}.pt")
    if rank == 0:
        (Path(d) / "train_state.json").write_text(json.dumps(asdict(state), indent=1))
    return d


def restore(engine, folder: str | Path, rank: int, rng: WorkerRng) -> TrainState:
    """Load weights, optimizer and this rank's RNG streams (into ``rng``); returns the train state."""
    folder = Path(folder)
    load_path, _ = engine.load_checkpoint(str(folder), tag=TAG)
    if load_path is None:
        raise RuntimeError(f"{folder}: no DeepSpeed checkpoint with tag {TAG!r}")
    state = TrainState(**json.loads((folder / "train_state.json").read_text()))
    rng_file = folder / f"rng_rank{rank}.pt"
    if rng_file.exists():  # a restart with a different worker count has no file for new ranks
        rng.load(torch.load(rng_file, weights_only=False)["rng"])
    return state
