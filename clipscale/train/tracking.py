"""Weights & Biases on rank 0: online with an API key, offline without one, or disabled.

Train V2's ``setup_wandb(rank_zero_only=True)`` does not restrict itself to rank 0, so the loop
creates this only on rank 0.

Restarts: online, the W&B run id is the clipscale run id, so a restarted worker group (or
``--resume``) continues the same W&B run. Offline runs cannot be resumed by W&B, and the
offline service of a killed process can hold its run id for a while ("run ID is in use"), so
each offline attempt gets its own id, ``<run_id>-<start time>``, named and grouped as the run.

Files: W&B writes its run folder with plain file I/O, so it needs a local folder. A run on a
local or shared file system keeps it in ``<run folder>/wandb``; a run on object storage (a URI)
keeps it in a node-local scratch folder (``storage.local_dir("wandb", run)``): online, W&B
streams everything to its server as it goes; offline, that folder stays on the node that ran
rank 0 and ``wandb sync`` must be run there to upload it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from clipscale import storage
from clipscale.results import row_payload


def wandb_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def wandb_parent(run_dir: str | Path, run_id: str) -> Path:
    """The local folder W&B writes its ``wandb/`` folder in: the run folder, or for a run on
    object storage a node-local scratch folder (see the module's docstring)."""
    return Path(storage.local_dir("wandb", run_id)) if storage.is_uri(run_dir) else Path(run_dir)


class Tracker:
    def __init__(self, *, mode: str, project: str, entity: str | None, group: str | None,
                 run_id: str, run_dir: str | Path, config: dict):
        self.mode = wandb_mode(mode)
        self.run = None
        if self.mode == "disabled":
            return
        import wandb

        run_dir = wandb_parent(run_dir, run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        online = self.mode == "online"
        self.run = wandb.init(
            mode=self.mode, project=project, entity=entity, group=group, name=run_id,
            id=run_id if online else f"{run_id}-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}",
            resume="allow" if online else None, dir=str(run_dir), config={**config, "run_id": run_id},
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )

    @classmethod
    def for_run(cls, contract, extra_config: dict | None = None) -> Tracker:
        """The tracker of a training run (``contract``: a ``train.contract.RunContract``)."""
        cfg = contract.run
        return cls(mode=cfg.logging.wandb_mode, project=cfg.logging.project, entity=cfg.logging.entity,
                   group=cfg.logging.group or cfg.sweep or None, run_id=contract.run_id, run_dir=cfg.run_dir,
                   config={**cfg.model_dump(), "info": {**contract.record(), "counter_name": contract.counter_name},
                           **(extra_config or {})})

    @property
    def dir(self) -> str | None:
        return self.run.dir if self.run else None

    def log(self, metrics: dict, samples_seen: int) -> None:
        if self.run:
            self.run.log({**metrics, "samples_seen": samples_seen})

    def log_row(self, row: dict) -> None:
        """A results row, under the ``results/`` prefix the analysis loaders read back."""
        if self.run:
            self.run.log(row_payload(row))

    def finish(self, exit_code: int = 0) -> None:
        if self.run:
            self.run.finish(exit_code=exit_code)
            self.run = None
