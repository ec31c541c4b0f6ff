"""The loaders give the same frame from parquet, a real W&B offline run, and a Tune experiment folder."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from analysis.checks import DegenerateInputError
from analysis.load import finals, load_results, load_tune_experiment, load_wandb_offline, results_frame
from analysis.wandb_records import CorruptRunFile, history_rows, iter_record_bytes
from clipscale.results import append_rows, row_payload
from analysis_sweep import synthetic_rows


def rows_under_test():
    # two runs, intermediate and final rows, a metric that is exactly 0.0 (W&B stores it as the int 0) and a NaN
    finished = [r for r in synthetic_rows() if r["model"] == "tiny" and r["image_tokens"] == 64][:2]
    rows = []
    for r in finished:
        rows.append(dict(r, samples_seen=r["samples_seen"] // 2, status="running", compute=r["compute"] / 2))
        rows.append(dict(r))
    rows[0]["zeroshot_top1_ar"] = 0.0
    rows[1]["i2t_r1_fa"] = float("nan")
    return rows


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    import wandb

    root = tmp_path_factory.mktemp("sources")
    rows = rows_under_test()
    table = root / "table"
    for r in rows:
        append_rows(table, [r])
    os.environ["WANDB_SILENT"] = "true"
    by_run = {}
    for r in rows:
        by_run.setdefault(r["run_id"], []).append(r)
    for run_id, run_rows in by_run.items():
        run = wandb.init(mode="offline", dir=str(root), project="clipscale-test", id=run_id.replace(".", "_")[:60],
                         config={"model": run_rows[0]["model"]})
        for r in run_rows:
            wandb.log({"train/loss": 1.0})  # a step without a results row: must be ignored
            wandb.log(row_payload(r))
        run.finish()
    tune = root / "tune" / "exp"
    for i, (run_id, run_rows) in enumerate(by_run.items()):
        trial = tune / f"trainable_{i:05d}"
        trial.mkdir(parents=True)
        lines = [json.dumps({**row_payload(r), "training_iteration": k + 1, "trial_id": f"t{i}",
                             "config": {"seed": 0}}) for k, r in enumerate(run_rows)]
        (trial / "result.json").write_text("\n".join(lines) + "\n")
    return {"parquet": table, "wandb": root / "wandb", "tune": tune, "rows": rows}


def test_three_sources_give_equal_frames(sources):
    from_parquet = load_results(sources["parquet"])
    from_wandb = load_results(sources["wandb"])
    from_tune = load_results(sources["tune"])
    assert len(from_parquet) == 4
    pd.testing.assert_frame_equal(from_parquet, from_wandb)
    pd.testing.assert_frame_equal(from_parquet, from_tune)
    assert from_wandb["zeroshot_top1_ar"].dtype == np.float64
    assert from_wandb["samples_seen"].dtype == np.int64
    nan_row = sources["rows"][1]
    at = (from_wandb["run_id"] == nan_row["run_id"]) & (from_wandb["samples_seen"] == nan_row["samples_seen"])
    assert at.sum() == 1 and np.isnan(from_wandb.loc[at, "i2t_r1_fa"]).all()
    assert (from_wandb.loc[from_wandb["zeroshot_top1_ar"] == 0.0]).shape[0] == 1


def test_wandb_offline_reader_sees_every_logged_step(sources):
    files = sorted(sources["wandb"].rglob("run-*.wandb"))
    assert len(files) == 2
    steps = list(history_rows(files[0]))
    assert any("train/loss" in s for s in steps)
    assert sum(1 for s in steps if "results/run_id" in s) == 2
    assert load_wandb_offline(files[0])["run_id"].nunique() == 1


def test_corrupt_and_torn_run_files(sources, tmp_path):
    data = sorted(sources["wandb"].rglob("run-*.wandb"))[0].read_bytes()
    complete = list(iter_record_bytes(data))
    assert len(list(iter_record_bytes(data[:-5]))) == len(complete) - 1  # torn final write: stop before it
    flipped = bytearray(data)
    flipped[20] ^= 0xFF
    with pytest.raises(CorruptRunFile, match="checksum"):
        list(iter_record_bytes(bytes(flipped)))
    with pytest.raises(CorruptRunFile, match="not a W&B run file"):
        list(iter_record_bytes(b"PAR1" + data[4:]))


def test_tune_rows_reported_twice_keep_the_last(tmp_path):
    row = rows_under_test()[0]
    trial = tmp_path / "exp" / "trial_0"
    trial.mkdir(parents=True)
    first = row_payload({**row, "wall_time_s": 1.0})
    again = row_payload({**row, "wall_time_s": 2.0})  # a restored trial reports the row again
    (trial / "result.json").write_text(json.dumps(first) + "\n" + json.dumps(again) + "\n")
    frame = load_tune_experiment(tmp_path / "exp")
    assert len(frame) == 1 and frame["wall_time_s"].iloc[0] == 2.0


def test_finals_takes_each_runs_last_evaluation(sources):
    frame = load_results(sources["parquet"])
    last = finals(frame)
    assert last["run_id"].is_unique
    assert len(last) == frame["run_id"].nunique() == 2
    assert (last["status"] == "finished").all()


def test_unknown_or_empty_sources_say_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_results(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no results found"):
        load_results(tmp_path)
    with pytest.raises(DegenerateInputError, match="no results rows"):
        results_frame([])
    (tmp_path / "exp" / "t").mkdir(parents=True)
    (tmp_path / "exp" / "t" / "result.json").write_text(json.dumps({"loss": 1.0}) + "\n")
    with pytest.raises(DegenerateInputError, match="no 'results/' keys"):
        load_results(tmp_path / "exp")
