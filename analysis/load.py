"""One results frame, the same columns and types, from any place the rows live.

Sources: the results table (parquet part files; a path or an s3://, gs://, file:// URI), a Ray Tune experiment folder (``result.json`` per trial),
W&B offline run folders, and a W&B project (``wandb:ENTITY/PROJECT``, needs WANDB_API_KEY). Training logs
and reports every row as ``clipscale.results.row_payload(row)``; W&B and Tune rows are rebuilt with
``row_from_payload``, then every source goes through ``results_frame`` so the frames compare equal.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from analysis.checks import DegenerateInputError
from analysis.wandb_records import history_rows
from clipscale import storage
from clipscale.errors import NotFound
from clipscale.results import ID_COLUMNS, RESCORED_STATUS, ROW_PREFIX, dedupe_rows, read_results, row_from_payload

STRING_COLUMNS = ["run_id", "sweep", "model", "image_reduction", "text_reduction", "languages", "status", "timestamp"]
INTEGER_COLUMNS = ["image_size", "patch_size", "image_tokens", "text_tokens", "seed", "samples_seen", "params"]
ROW_KEY = ["run_id", "samples_seen", "status"]


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _column(name: str, values: pd.Series) -> pd.Series:
    if name in STRING_COLUMNS:
        return values.map(lambda v: "" if _is_missing(v) else str(v)).astype(object)
    if name in INTEGER_COLUMNS:
        numeric = pd.to_numeric(values, errors="raise")
        # a missing integer (e.g. a row logged without params) keeps the column float, in every source alike
        return numeric.astype("int64") if numeric.notna().all() else numeric.astype("float64")
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.map(lambda v: not _is_missing(v)).sum():
        return numeric.astype("float64")  # every metric and float id column; W&B turns 0.0 into 0
    return values.map(lambda v: "" if _is_missing(v) else str(v)).astype(object)


def results_frame(rows: Iterable[dict] | pd.DataFrame) -> pd.DataFrame:
    """Canonical frame: id columns in ``ID_COLUMNS`` order, then metrics sorted; fixed dtypes; one row per
    evaluation point (run_id, samples_seen), the latest one winning (``clipscale.results.dedupe_rows``: a
    resumed trial reports the points between its checkpoint and its death again)."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if df.empty:
        raise DegenerateInputError("no results rows found")
    missing = [c for c in ROW_KEY if c not in df.columns]
    if missing:
        raise DegenerateInputError(f"results rows lack the key column(s) {missing}")
    df = pd.DataFrame({c: _column(c, df[c]) for c in df.columns})
    df = dedupe_rows(df)
    cols = [c for c in ID_COLUMNS if c in df.columns]
    df = df[cols + sorted(c for c in df.columns if c not in ID_COLUMNS)]
    return df.sort_values(ROW_KEY, kind="stable").reset_index(drop=True)


def _payload_rows(records: Iterable[dict]) -> list[dict]:
    rows = []
    for rec in records:
        nested = rec.get(ROW_PREFIX.rstrip("/"))
        if isinstance(nested, dict):  # a reporter that nested the row instead of flattening it
            rec = {**rec, **{ROW_PREFIX + k: v for k, v in nested.items()}}
        row = row_from_payload(rec)
        if row:
            rows.append(row)
    return rows


def load_parquet(path) -> pd.DataFrame:
    return results_frame(read_results(path))


def load_tune_experiment(path) -> pd.DataFrame:
    """Rows reported to Ray Tune: every line of every trial's ``result.json`` under ``path``."""
    files = sorted(Path(path).rglob("result.json"))
    if not files:
        raise NotFound(f"{path}: no result.json (not a Ray Tune experiment folder)")
    records = []
    for f in files:
        for line in f.read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
    rows = _payload_rows(records)
    if not rows:
        raise DegenerateInputError(f"{path}: Tune results carry no '{ROW_PREFIX}' keys")
    return results_frame(rows)


def wandb_run_files(path) -> list[Path]:
    p = Path(path)
    # latest-run is W&B's link to the newest run folder: reading it too would read that run twice
    files = [p] if p.is_file() else sorted(f for f in p.rglob("run-*.wandb") if "latest-run" not in f.parts)
    if not files:
        raise NotFound(f"{path}: no run-*.wandb files (not a W&B offline folder)")
    return files


def load_wandb_offline(path) -> pd.DataFrame:
    """Rows logged to W&B offline runs under ``path`` (a ``wandb`` dir, one run dir, or one .wandb file)."""
    records = [row for f in wandb_run_files(path) for row in history_rows(f)]
    rows = _payload_rows(records)
    if not rows:
        raise DegenerateInputError(f"{path}: W&B runs carry no '{ROW_PREFIX}' keys")
    return results_frame(rows)


def load_wandb_project(project: str) -> pd.DataFrame:
    """Rows logged to a W&B project (``ENTITY/PROJECT``) through the public API; needs WANDB_API_KEY."""
    import wandb

    api = wandb.Api()
    records = [rec for run in api.runs(project) for rec in run.scan_history()]
    rows = _payload_rows(records)
    if not rows:
        raise DegenerateInputError(f"wandb:{project}: no run logged '{ROW_PREFIX}' keys")
    return results_frame(rows)


def load_results(source) -> pd.DataFrame:
    """The results frame from any source: parquet table (folder or file, a path or a URI), Tune
    experiment folder, W&B offline folder, or ``wandb:ENTITY/PROJECT``."""
    s = str(source)
    if s.startswith("wandb:"):
        return load_wandb_project(s[len("wandb:"):])
    if storage.is_uri(s):  # a results table on object storage (s3://, gs://) or a file:// URI
        storage.check_uri(s)
        return load_parquet(s)
    p = Path(s)
    if not p.exists():
        raise NotFound(f"{p}: no such file or folder")
    if p.is_file():
        return load_wandb_offline(p) if p.suffix == ".wandb" else load_parquet(p)
    if any(p.glob("part-*.parquet")):
        return load_parquet(p)
    if any(p.rglob("run-*.wandb")):
        return load_wandb_offline(p)
    if any(p.rglob("result.json")):
        return load_tune_experiment(p)
    raise NotFound(f"{p}: no results found (expected part-*.parquet, W&B run-*.wandb or Tune result.json)")


def finals(frame: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every run (its largest samples_seen), failed runs left out. A row
    ``clipscale eval`` added at that point (status ``rescored``) fills in its suites' columns."""
    ok = frame[frame["status"] != "failed"] if "status" in frame else frame
    if ok.empty:
        raise DegenerateInputError("every run failed; nothing to analyse")
    if "status" in ok and (ok["status"] == RESCORED_STATUS).any():
        end = ok[ok["samples_seen"] == ok.groupby("run_id")["samples_seen"].transform("max")]
        later = (end["status"] == RESCORED_STATUS).astype(int)  # the training row first
        end = end.assign(_later=later).sort_values(["run_id", "_later"], kind="stable").drop(columns="_later")
        return end.groupby("run_id", sort=True).first().reset_index()[list(frame.columns)]
    idx = ok.groupby("run_id", sort=True)["samples_seen"].idxmax()
    return ok.loc[np.sort(idx.to_numpy())].reset_index(drop=True)
