"""Where each attempt of a run ran and what it resumed from, one small file per rank and attempt
(``<run>/attempts/<start>-rank<r>.json``, on the run's storage like its checkpoints).

A run restarts when a worker or a whole node dies (Ray Train's FailureConfig) or when a sweep
retries a trial (Tune's FailureConfig) or the user passes ``--resume``. The files answer the
questions an operator asks afterwards: on which nodes did each rank run, how many times did the
run restart, and from which step did each attempt continue. One file per rank and attempt (never
an append) so that ranks on different nodes can write to an object store at once.
"""
from __future__ import annotations

import json
import os
import socket
import time

from clipscale import storage


def record_attempt(run_dir, rank: int, world: int, resumed_step: int, resumed_samples: int) -> dict:
    import ray

    ns = time.time_ns()
    rec = {"rank": rank, "world_size": world, "node_id": ray.get_runtime_context().get_node_id(),
           "hostname": socket.gethostname(), "pid": os.getpid(), "start_time": ns / 1e9,
           "resumed_step": resumed_step, "resumed_samples_seen": resumed_samples}
    storage.write_text(storage.join(run_dir, "attempts", f"{ns:020d}-rank{rank}.json"), json.dumps(rec))
    return rec


def read_attempts(run_dir) -> list[dict]:
    """Every rank's record, oldest first (file names start with the start time in ns)."""
    files = storage.list_files(storage.join(run_dir, "attempts"), "*-rank*.json")
    return [json.loads(storage.read_text(f)) for f in files]
