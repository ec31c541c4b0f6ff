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
"""
from __future__ import annotations

import io
import os
from typing import Iterable

import pandas as pd

from clipscale import storage
from clipscale.choices import plain
from clipscale.errors import NotFound

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
    "status",            # "running" (intermediate eval) | "finished" | "failed"
    "timestamp",         # UTC ISO time of the evaluation
]


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
    first = rows[0]
    name = f"part-{first['run_id']}-{int(first['samples_seen']):012d}-{first['status']}.parquet"
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    loc = storage.join(table_dir, name)
    storage.write_bytes(loc, buf.getvalue())
    return loc


def _read_part(loc: str) -> pd.DataFrame:
    fs, path = storage.resolve(loc)
    return pd.read_parquet(path, filesystem=fs)


def read_results(table_dir: str | os.PathLike) -> pd.DataFrame:
    """All rows of a results table folder (or a single parquet file), a path or a URI, sorted
    for stable output."""
    loc = os.fspath(table_dir)
    storage.resolve(loc, "results table")  # an unusable URI says so, naming it
    files = [loc] if storage.is_file(loc) else storage.list_files(loc, "part-*.parquet")
    if not files:
        raise NotFound(f"{loc}: no results (expected part-*.parquet files)")
    df = pd.concat([_read_part(f) for f in files], ignore_index=True)
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
