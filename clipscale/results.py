"""The results table: one row per evaluation of a run.

Stored as a folder of parquet part files named
``part-<run_id>-<samples_seen, 12 digits>-<status>.parquet`` (status ``running``, ``finished`` or
``failed``; a sweep's resume lists ``part-*-finished.parquet``), each written atomically
(docs/formats.md). Appending is then a new file, never a rewrite, so trials on many nodes can append
at once to shared storage, and a killed writer loses at most its own row. ``read_results``
concatenates the parts into one frame. The folder is a local path or a URI (s3://, gs://,
file://; see clipscale/storage.py): on an object store each part is one whole object.

Metric columns are wide, one per metric and language: ``zeroshot_top1_<lang>``,
``zeroshot_top1_mean`` (mean over languages), ``zeroshot_top1_non_en`` (mean over non-English),
``i2t_r1_<lang>``, ``i2t_r5_<lang>``, ``t2i_r1_<lang>``, ``t2i_r5_<lang>``.

Exactly once. A row is keyed by its evaluation point, ``EVAL_POINT`` = (run_id, samples_seen),
which does not depend on the attempt: a trial that dies between an evaluation and its next
checkpoint resumes from the earlier checkpoint and evaluates the same point again. Its part file
has the same name, so the table keeps one file; every reader (``read_results`` and the analysis
loaders for Tune and W&B, which see every report of every attempt) keeps one row per point with
``dedupe_rows``: the latest timestamp wins.
"""
from __future__ import annotations

import io
import os
from typing import Iterable

import pandas as pd

from clipscale import storage
from clipscale.choices import plain
from clipscale.errors import ClipscaleError, NotFound

# Columns every row has, in this order; metric columns follow, sorted.
ID_COLUMNS = [
    "run_id",            # unique per run (a trial of a sweep, or one `clipscale train`)
    "sweep",             # sweep name, "" for a single run
    "model",             # registry name, e.g. "ViT-B-16" or "tiny"
    "image_size",        # pixels per side at the final stage
    "patch_size",
    "image_tokens",      # patch tokens seen by the image tower (after reduction) at the final stage
    "text_tokens",       # text tokens seen by the text tower (after reduction) at the final stage
    "image_reduction",   # "none" | "resize" | "random" | "grid" | "block" (final stage)
    "text_reduction",    # "truncate" | "random" | "block" | "syntax"
    "languages",         # comma-separated language codes of the training mix
    "english_share",     # share of English captions in the training data (0..1)
    "seed",
    "samples_seen",      # samples seen when this row was evaluated
    "params",            # total parameters
    "train_flops_per_sample",  # analytic training FLOPs per sample (final stage)
    "compute",           # total training FLOPs so far, summed over stages
    "wall_time_s",
    "status",            # "running" (intermediate eval) | "finished" | "failed" | "rescored" (`clipscale eval`)
    "timestamp",         # UTC ISO time of the evaluation
]

# A row `clipscale eval` adds for a saved checkpoint: same run and samples seen as the training
# row of that point, more metric columns (evaluation/rescore.py).
RESCORED_STATUS = "rescored"

# One row per evaluation point, whichever attempt wrote it. A training row and a `clipscale eval`
# row of the same point are two evaluations of it, kept apart by ``row_kind``.
EVAL_POINT = ["run_id", "samples_seen"]


class ResultsWriteError(ClipscaleError, OSError):
    """A row that could not be written (full disk, storage refused); names the table and the row.
    Rows written before it are untouched: each is its own part file."""


def row_kind(status: pd.Series) -> pd.Series:
    """"rescored" for `clipscale eval` rows, "train" for the training loop's rows."""
    return status.astype(str).where(status.astype(str) == RESCORED_STATUS, "train")


def dedupe_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ``EVAL_POINT`` and row kind: the one with the latest timestamp, and of equal
    timestamps the one seen last (a later part file, a later report). Order of the kept rows is
    preserved."""
    if df.empty or any(c not in df.columns for c in EVAL_POINT):
        return df
    order = df.assign(_seen=range(len(df)))
    key = EVAL_POINT
    if "status" in order.columns:
        order["_kind"] = row_kind(order["status"])
        key = EVAL_POINT + ["_kind"]
    if "timestamp" in order.columns:
        order = order.sort_values(["timestamp", "_seen"], kind="stable",
                                  key=lambda c: c.astype(str) if c.name == "timestamp" else c)
    kept = order.drop_duplicates(key, keep="last").sort_values("_seen", kind="stable")
    return df.loc[kept.index]


def part_name(row: dict) -> str:
    """The part file of a row: one name per evaluation point and status, so a row re-written by
    a resumed attempt replaces its file instead of adding one."""
    run_id = str(row["run_id"]).replace("/", "_")
    return f"part-{run_id}-{int(row['samples_seen']):012d}-{row['status']}.parquet"


def append_rows(table_dir: str | os.PathLike, rows: Iterable[dict]) -> str:
    """Write ``rows`` as one new part file of the table; returns its location."""
    rows = list(rows)
    if not rows:
        raise ValueError("append_rows: no rows")
    missing = [c for c in ID_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"results row lacks columns {missing}")
    df = pd.DataFrame([{k: plain(v) for k, v in row.items()} for row in rows])   # choices as plain strings
    df = df[ID_COLUMNS + sorted(c for c in df.columns if c not in ID_COLUMNS)]
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    loc = storage.join(table_dir, part_name(rows[0]))
    try:
        storage.write_bytes(loc, buf.getvalue())
    except OSError as e:  # the temp file is removed; earlier part files are untouched
        raise ResultsWriteError(
            e.errno, f"{loc}: cannot write the results row of run {rows[0]['run_id']} at samples_seen "
            f"{rows[0]['samples_seen']} ({e.strerror or e}); earlier rows are kept. Free space or fix the "
            "storage, then resume the run (--resume) to write it again") from e
    return loc


def _read_part(loc: str) -> pd.DataFrame:
    fs, path = storage.resolve(loc)
    return pd.read_parquet(path, filesystem=fs)


def read_results(table_dir: str | os.PathLike) -> pd.DataFrame:
    """All rows of a results table folder (or a single parquet file), a path or a URI, one per
    evaluation point (``dedupe_rows``), sorted for stable output."""
    loc = os.fspath(table_dir)
    storage.resolve(loc, "results table")  # an unusable URI says so, naming it
    files = [loc] if storage.is_file(loc) else storage.list_files(loc, "part-*.parquet")
    if not files:
        raise NotFound(f"{loc}: no results (expected part-*.parquet files)")
    df = dedupe_rows(pd.concat([_read_part(f) for f in files], ignore_index=True))
    cols = [c for c in ID_COLUMNS if c in df.columns]
    df = df[cols + sorted(c for c in df.columns if c not in ID_COLUMNS)]
    return df.sort_values(["run_id", "samples_seen", "status"], kind="stable").reset_index(drop=True)


# W&B and Ray Tune carry the same rows: each evaluation logs (and reports) the row's columns
# under this prefix, so analysis rebuilds an identical frame from a W&B project, W&B offline
# run folders, a Tune experiment folder or the parquet table.
ROW_PREFIX = "results/"


def row_payload(row: dict) -> dict:
    """A results row as a flat dict for ``wandb.log`` / ``ray.train.report``."""
    return {ROW_PREFIX + k: plain(v) for k, v in row.items()}


def row_from_payload(record: dict) -> dict | None:
    """Inverse of ``row_payload``: the row inside a logged/reported dict, or None if it has none."""
    row = {k[len(ROW_PREFIX):]: v for k, v in record.items() if k.startswith(ROW_PREFIX)}
    return row or None
