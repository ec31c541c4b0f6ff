"""Run a function on several gloo processes and collect what each rank saved (shared by the
distributed-logic tests: gathered losses, accumulation equivalence)."""
from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_ranks(worker, world: int, out_dir: Path) -> list:
    """``worker(rank, port, out_dir)`` on ``world`` processes; each saves ``out_dir/rank<r>.pt``."""
    mp.spawn(worker, args=(free_port(), str(out_dir)), nprocs=world, join=True)
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(world)]
