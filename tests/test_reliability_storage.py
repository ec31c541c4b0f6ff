"""Storage faults: rows exactly once, checkpoints committed atomically and validated, a full disk
(a small tmpfs mounted by the test) and two concurrent appenders. Fast: real files, no Ray cluster."""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest

from clipscale.results import ID_COLUMNS, ResultsWriteError, append_rows, dedupe_rows, read_results
from clipscale.train import commit


def row(run: str, samples: int, status: str = "running", ts: str = "2026-01-01T00:00:00+00:00",
        **metrics) -> dict:
    r = {c: 0 for c in ID_COLUMNS}
    r.update(run_id=run, sweep="s", model="tiny", image_reduction="none", text_reduction="truncate",
             languages="en", samples_seen=samples, status=status, timestamp=ts, **metrics)
    return r


# ---- every row exactly once -------------------------------------------------------------------

def test_dedupe_keeps_the_latest_row_of_each_eval_point():
    df = pd.DataFrame([row("a", 64, ts="2026-01-01T00:00:05+00:00", loss=2.0),
                       row("a", 64, ts="2026-01-01T00:00:01+00:00", loss=9.0),  # older attempt, read later
                       row("a", 128, "finished", loss=1.0), row("b", 64, loss=3.0),
                       row("b", 64, loss=4.0)])  # same timestamp: the one seen last
    got = dedupe_rows(df)
    assert list(zip(got["run_id"], got["samples_seen"], got["loss"])) == [("a", 64, 2.0), ("a", 128, 1.0),
                                                                         ("b", 64, 4.0)]


def test_a_row_rewritten_by_a_resumed_attempt_is_one_row(tmp_path):
    append_rows(tmp_path, [row("a", 64, ts="2026-01-01T00:00:01+00:00", wall_time_s=1.0)])
    append_rows(tmp_path, [row("a", 128, "finished")])
    append_rows(tmp_path, [row("a", 64, ts="2026-01-01T00:09:00+00:00", wall_time_s=7.0)])  # resumed
    assert len(list(tmp_path.glob("part-*.parquet"))) == 2
    df = read_results(tmp_path)
    assert list(df["samples_seen"]) == [64, 128] and df["wall_time_s"].iloc[0] == 7.0
    # a table folder merged from two copies (e.g. synced from two places) still reads once
    other = tmp_path / "copy"
    append_rows(other, [row("a", 64, ts="2026-01-01T00:00:01+00:00", wall_time_s=1.0)])
    both = pd.concat([read_results(tmp_path), read_results(other)], ignore_index=True)
    assert len(dedupe_rows(both)) == 2 and dedupe_rows(both)["wall_time_s"].iloc[0] == 7.0


def test_wandb_runs_of_two_attempts_give_one_row_per_point(tmp_path):
    """A killed trial's W&B run and its resumed run both logged the point at 64 samples."""
    import wandb

    from analysis.load import load_results
    from clipscale.results import row_payload

    os.environ["WANDB_SILENT"] = "true"
    for attempt, (ts, points) in enumerate([("2026-01-01T00:00:01+00:00", [64]),
                                            ("2026-01-01T00:05:00+00:00", [64, 128])]):
        run = wandb.init(mode="offline", dir=str(tmp_path), project="p", id=f"a-attempt{attempt}")
        for s in points:
            wandb.log(row_payload(row("a", s, "finished" if s == 128 else "running", ts=ts,
                                      wall_time_s=float(attempt))))
        run.finish()
    wandb.teardown()  # the service flushes the offline run files before it stops (finish may return earlier)
    df = load_results(tmp_path / "wandb")
    assert list(df["samples_seen"]) == [64, 128]
    assert df["wall_time_s"].tolist() == [1.0, 1.0]  # the resumed attempt's rows


def _append_many(args):
    table, sweep, n = args
    for i in range(n):
        append_rows(table, [row(f"{sweep}-t{i % 5}", 64 * (i // 5 + 1), wall_time_s=float(i))])
    return n


def test_two_sweeps_appending_concurrently_lose_no_row(tmp_path):
    table = str(tmp_path / "results")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        done = pool.map(_append_many, [(table, "sweepA", 60), (table, "sweepB", 60)])
    df = read_results(table)
    assert sum(done) == len(df) == 120
    assert df.groupby(df["run_id"].str[:6]).size().to_dict() == {"sweepA": 60, "sweepB": 60}
    assert not [p for p in os.listdir(table) if p.startswith(".")]  # no temp file left behind


# ---- checkpoints: commit marker, validation, fallback to the previous one ---------------------

def fake_rank_folder(root: Path, rank: int, world: int, samples: int, size: int = 4096) -> Path:
    """One rank's part of a checkpoint as ckpt.save writes it (a DeepSpeed tag folder, rng, state)."""
    d = root / f"rank{rank}"
    (d / "ckpt").mkdir(parents=True)
    (d / "ckpt" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_bytes(os.urandom(size))
    (d / f"rng_rank{rank}.pt").write_bytes(os.urandom(64))
    if rank == 0:
        (d / "ckpt" / "mp_rank_00_model_states.pt").write_bytes(os.urandom(size))
        (d / "train_state.json").write_text(json.dumps({"samples_seen": samples}))
    commit.write_marker(d, rank, world, samples)
    return d


def stored_checkpoint(run_dir: Path, name: str, samples: int, world: int = 2) -> Path:
    """Ranks' folders merged into one checkpoint folder, as Ray's report does."""
    dest = run_dir / name
    for r in range(world):
        shutil.copytree(fake_rank_folder(run_dir / ".staging" / name, r, world, samples), dest,
                        dirs_exist_ok=True)
    return dest


def test_complete_checkpoint_passes_and_each_damage_is_named(tmp_path):
    cp = stored_checkpoint(tmp_path, "checkpoint_2026-01-01_00-00-01.000000", 1024)
    assert commit.incomplete_reason(cp) is None
    damages = {
        "no commit marker commit_rank1.json": lambda d: (d / "commit_rank1.json").unlink(),
        "no commit marker commit_rank0.json": lambda d: (d / "commit_rank0.json").unlink(),
        "train_state.json is missing": lambda d: (d / "train_state.json").unlink(),
        "bytes, 4096 were written": lambda d: os.truncate(d / "ckpt" / "mp_rank_00_model_states.pt", 100),
        "is damaged": lambda d: (d / "rng_rank1.pt").write_bytes(b"x" * 64),
    }
    for i, (reason, damage) in enumerate(damages.items()):
        broken = tmp_path / f"broken{i}"
        shutil.copytree(cp, broken)
        damage(broken)
        assert reason in commit.incomplete_reason(broken)


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path):
    import ray.train

    old = stored_checkpoint(tmp_path, "checkpoint_2026-01-01_00-00-01.000000", 1024)
    latest = stored_checkpoint(tmp_path, "checkpoint_2026-01-01_00-00-09.000000", 2048)
    stored_checkpoint(tmp_path, "checkpoint_2026-01-01_00-00-99.000000", 3072)  # newer, never registered
    assert commit.usable_checkpoint(ray.train.Checkpoint(str(latest)), str(tmp_path)).path == str(latest)
    os.truncate(latest / "ckpt" / "zero_pp_rank_1_mp_rank_00_optim_states.pt", 10)  # a half upload
    with pytest.warns(commit.IncompleteCheckpointWarning, match=latest.name) as rec:
        got = commit.usable_checkpoint(ray.train.Checkpoint(str(latest)), str(tmp_path))
    assert got.path.rstrip("/") == str(old)
    assert "zero_pp_rank_1_mp_rank_00_optim_states.pt has 10 bytes" in str(rec[0].message)
    (old / "commit_rank0.json").unlink()
    with pytest.raises(commit.CheckpointError, match="no complete checkpoint"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            commit.usable_checkpoint(ray.train.Checkpoint(str(latest)), str(tmp_path))
    assert commit.usable_checkpoint(None, str(tmp_path)) is None


# ---- a full disk ------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs mounted by the test (needs root and mount)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a size-limited tmpfs needs root and mount(8)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                       capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], timeout=20)


def test_full_disk_during_a_table_write_fails_clearly_and_keeps_earlier_rows(small_disk):
    table = small_disk / "results"
    written = 0
    with pytest.raises(ResultsWriteError, match=r"cannot write the results row of run a at samples_seen \d+"
                                                r" \(No space left on device\); earlier rows are kept"):
        for i in range(10_000):
            append_rows(table, [row("a", 64 * (i + 1), blob="x" * 2000)])
            written += 1
    assert written > 5
    df = read_results(table)
    assert list(df["samples_seen"]) == [64 * (i + 1) for i in range(written)]
    assert not [p for p in os.listdir(table) if p.startswith(".")]  # the half-written temp file is gone


def test_full_disk_during_a_checkpoint_upload_fails_clearly_and_keeps_the_previous(small_disk, tmp_path):
    """Ray's report copies each rank's folder to the storage path with pyarrow's copy_files."""
    import pyarrow.fs

    run_dir = small_disk / "run"
    local = pyarrow.fs.LocalFileSystem()
    first = fake_rank_folder(tmp_path / "a", 0, 1, 1024, size=40_000)
    pyarrow.fs.copy_files(str(first), str(run_dir / "checkpoint_1"), local, local)
    second = fake_rank_folder(tmp_path / "b", 0, 1, 2048, size=400_000)  # does not fit
    with pytest.raises(commit.CheckpointError,
                       match="cannot write the checkpoint at samples_seen 2048: the disk is full"):
        with commit.clear_write_errors("checkpoint at samples_seen 2048", str(run_dir)):
            pyarrow.fs.copy_files(str(second), str(run_dir / "checkpoint_2"), local, local)
    assert commit.incomplete_reason(run_dir / "checkpoint_1") is None
    assert commit.incomplete_reason(run_dir / "checkpoint_2") is not None  # never taken for complete
