"""Checkpoint commit and validation: a checkpoint is used only when it is complete.

Each rank saves its part into a local temp folder and hands it to ``ray.train.report``, which
copies it into one checkpoint folder on the storage path (checkpoint.py). The copy of one rank
can die half way (a killed node, a full disk), and a stored file can be damaged later. So every
rank writes, last, a commit marker ``commit_rank<R>.json`` listing each of its files with size
and SHA-256. A checkpoint folder is complete when rank 0's marker exists, names the world size,
and every rank's marker and every file it lists are present and intact. Ray's upload order
within a folder is not ours to choose, so the marker's file list, not its mere presence, is what
proves completeness.

On restore, Ray Train V2 hands every worker the latest checkpoint registered in its
``checkpoint_manager_snapshot.json`` (registered once all ranks reported). ``usable_checkpoint``
checks it; when it is incomplete or damaged it warns, naming the folder, and takes the newest
complete older ``checkpoint_*`` folder of the run instead (``train.keep_checkpoints`` >= 2 keeps
one). Every rank reads the same folders and so decides the same. See docs/reliability.md.
"""
from __future__ import annotations

import errno
import hashlib
import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from clipscale import storage
from clipscale.atomic import atomic_path
from clipscale.errors import CheckpointError

MARKER = "commit_rank{rank}.json"
MARKER_GLOB = "commit_rank*.json"


class IncompleteCheckpointWarning(UserWarning):
    """The latest checkpoint is incomplete or damaged; an older one is used."""


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_marker(folder: str | Path, rank: int, world: int, samples_seen: int) -> Path:
    """Write this rank's commit marker into its checkpoint folder, after every other file."""
    folder = Path(folder)
    files = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": file_digest(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and not p.match(MARKER_GLOB)}
    marker = folder / MARKER.format(rank=rank)
    with atomic_path(marker) as tmp:
        Path(tmp).write_text(json.dumps({"rank": rank, "world": world, "samples_seen": samples_seen,
                                         "files": files}, indent=1))
    return marker


def incomplete_reason(folder: str | Path) -> str | None:
    """None when the checkpoint folder is complete, else what is missing or damaged."""
    folder = Path(folder)
    first = folder / MARKER.format(rank=0)
    if not first.is_file():
        return "no commit marker commit_rank0.json (the checkpoint was not fully written)"
    try:
        world = int(json.loads(first.read_text())["world"])
    except (ValueError, KeyError, TypeError) as e:
        return f"commit_rank0.json is unreadable ({e})"
    for rank in range(world):
        marker = folder / MARKER.format(rank=rank)
        if not marker.is_file():
            return f"no commit marker {marker.name} (rank {rank} of {world} did not finish writing)"
        try:
            files = json.loads(marker.read_text())["files"]
        except (ValueError, KeyError, TypeError) as e:
            return f"{marker.name} is unreadable ({e})"
        for rel, want in files.items():
            p = folder / rel
            if not p.is_file():
                return f"{rel} is missing"
            if p.stat().st_size != want["size"]:
                return f"{rel} has {p.stat().st_size} bytes, {want['size']} were written"
            if file_digest(p) != want["sha256"]:
                return f"{rel} is damaged (its SHA-256 differs from the one written)"
    return None


def checkpoint_folders(run_dir: str) -> list[str]:
    """The run's ``checkpoint_*`` folders (Ray names them by time), oldest first."""
    from pyarrow.fs import FileSelector, FileType

    fs, path = storage.resolve(run_dir)
    infos = fs.get_file_info(FileSelector(path, allow_not_found=True))
    return sorted(i.base_name for i in infos
                  if i.type == FileType.Directory and i.base_name.startswith("checkpoint_"))


def newest_checkpoint(run_dir: str):
    """The run folder's newest ``checkpoint_*`` folder as a ``ray.train.Checkpoint`` (for runs
    that write their checkpoints themselves: train/lane.py), or None; ``usable_checkpoint``
    then checks it and falls back to an older complete one."""
    import ray.train

    names = checkpoint_folders(run_dir)
    return ray.train.Checkpoint(storage.join(run_dir, names[-1])) if names else None


def usable_checkpoint(restored, run_dir: str, rank: int = 0):
    """The checkpoint to resume from: Ray's latest when complete, else the newest complete older
    one of the run, with a warning naming the skipped folder(s). None when there is none to
    resume from; raises CheckpointError when checkpoints exist but none is complete."""
    import ray.train

    if restored is None:
        return None
    latest = storage.name(restored.path.rstrip("/"))
    older = [n for n in checkpoint_folders(run_dir) if n < latest]
    candidates = [(latest, restored)] + [(n, ray.train.Checkpoint(storage.join(run_dir, n)))
                                         for n in reversed(older)]
    skipped = []
    for name, cp in candidates:
        with cp.as_directory() as d:
            reason = incomplete_reason(d)
        if reason is None:
            if skipped and rank == 0:
                msg = (f"checkpoint {'; '.join(skipped)}: skipped; resuming from the complete "
                       f"checkpoint {storage.join(run_dir, name)}")
                warnings.warn(msg, IncompleteCheckpointWarning, stacklevel=2)
                print(f"[clipscale] WARNING {msg}", flush=True)
            return cp
        skipped.append(f"{storage.join(run_dir, name)} is incomplete: {reason}")
    raise CheckpointError("no complete checkpoint to resume from: " + "; ".join(skipped) +
                          ". Delete the run folder to start it again from zero")


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def is_out_of_space(e: BaseException) -> bool:
    """A full disk or quota, however the writer reports it (torch's writer raises RuntimeError)."""
    if isinstance(e, OSError) and e.errno in NO_SPACE:
        return True
    text = str(e).lower()
    return "no space left" in text or "quota exceeded" in text or "file write failed" in text


@contextmanager
def clear_write_errors(what: str, where: str) -> Iterator[None]:
    """Turn a full disk (or another storage failure) while writing ``what`` into one clear error
    naming it and ``where``; earlier checkpoints and rows stay as they were."""
    try:
        yield
    except CheckpointError:
        raise
    except (OSError, RuntimeError) as e:
        if not (isinstance(e, OSError) or is_out_of_space(e)):
            raise
        cause = "the disk is full" if is_out_of_space(e) else f"the storage failed ({e})"
        raise CheckpointError(f"{where}: cannot write the {what}: {cause}. Earlier checkpoints and "
                              "results rows are intact; free space, then resume (--resume)") from e
