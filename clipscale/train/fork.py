"""Cooldown forks, the run side (the sweep side is sweep/fork_launch.py; README "Cooldown forks").

A wsd trunk (``train.fork_points``) checkpoints at each fork point and keeps a copy of that
checkpoint in ``<trunk run>/forks/at_<samples>``: Ray's checkpoint retention
(``train.keep_checkpoints``) never deletes it. Each rank copies its own files, commit marker
included (train/commit.py), before it reports the checkpoint to Ray, so a checkpoint Ray has
registered has its fork copy complete.

A fork is an ordinary run whose ``train.init_from`` names such a copy: while the run has no
checkpoint of its own, it restores that one (weights, optimizer, step, samples seen, data
position, RNGs: checkpoint.restore, as on resume); once it has its own, Ray Train hands it that
one and ``init_from`` is not read again. Its results rows carry ``forked_from`` (the trunk's run
id) and ``fork_samples`` (where it left the trunk); its ``compute`` is the trunk's up to that
point plus its own cooldown, because the restored train state carries the trunk's compute.
"""
from __future__ import annotations

import re

from clipscale import storage
from clipscale.errors import CheckpointError

FORKS = "forks"
_FORK_DIR = re.compile(r"^(?P<run_dir>.+)/" + FORKS + r"/at_(?P<samples>\d+)/?$")


def fork_dir(run_dir: str, samples: int) -> str:
    """Where a trunk keeps its checkpoint at ``samples`` for the forks starting there."""
    return storage.join(run_dir, FORKS, f"at_{samples}")


def fork_origin(init_from: str | None) -> tuple[str, int] | None:
    """(trunk run id, fork point) of a ``fork_dir`` location; None for anything else."""
    m = _FORK_DIR.match(init_from or "")
    return (storage.name(m["run_dir"]), int(m["samples"])) if m else None


def fork_columns(init_from: str | None) -> dict:
    """The results-row columns of a forked run (none for an ordinary run)."""
    if not init_from:
        return {}
    origin = fork_origin(init_from)
    return {"forked_from": origin[0] if origin else init_from, "fork_samples": origin[1] if origin else -1}


def keep_fork_copy(folder: str, run_dir: str, samples_seen: int, fork_points) -> str | None:
    """A trunk's rank: copy its checkpoint part in ``folder`` into the fork copy when
    ``samples_seen`` is a fork point; returns the copy's location (None: not a fork point)."""
    if samples_seen not in set(fork_points):
        return None
    from pyarrow.fs import LocalFileSystem, copy_files

    dest = fork_dir(run_dir, samples_seen)
    storage.makedirs(dest)
    fs, path = storage.resolve(dest)
    copy_files(folder, path, source_filesystem=LocalFileSystem(), destination_filesystem=fs)
    return dest


def init_checkpoint(init_from: str):
    """The complete checkpoint a fork starts from, as a ``ray.train.Checkpoint``; a missing or
    incomplete one is a CheckpointError naming ``train.init_from``."""
    import ray.train

    from clipscale.train.commit import incomplete_reason

    if not storage.is_dir(init_from):
        raise CheckpointError(f"train.init_from: {init_from} is not a checkpoint folder (did its trunk "
                              "reach the fork point?)")
    cp = ray.train.Checkpoint(init_from)
    with cp.as_directory() as d:
        reason = incomplete_reason(d)
    if reason is not None:
        raise CheckpointError(f"train.init_from: {init_from} is incomplete: {reason}")
    return cp
