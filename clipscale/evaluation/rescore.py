"""``clipscale eval``: score saved models on evaluation suites without Ray Train.

A target is a run folder (its last checkpoint), a checkpoint folder, an exported model, or a
sweep folder (every trial's last checkpoint). Each scored checkpoint adds one results row with
the checkpoint's samples seen and compute and the status ``rescored`` (so it never replaces the
training row of the same point: the table's key is run, samples seen and status), and writes
clip_benchmark-style JSON files (``dataset``, ``model``, ``pretrained``, ``task``, ``metrics``,
``language``; clip_benchmark/cli.py's ``dump``). Scoring the same checkpoint on further suites
later merges their columns into its ``rescored`` row.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from clipscale import storage
from clipscale.config import ConfigError, RunConfig, build_run_config
from clipscale.evaluation.suite_readers import ClassificationData
from clipscale.evaluation.suite_scoring import SuiteScorer, flatten
from clipscale.results import RESCORED_STATUS, append_rows, read_results

STATUS = RESCORED_STATUS
JSON_FOLDER = "clip_benchmark"


def targets(path: str | os.PathLike) -> list[Path]:
    """A sweep folder (``sweep.json``) -> its trials' run folders; anything else -> itself."""
    p = Path(path).resolve()
    if not (p / "sweep.json").is_file():
        return [p]
    runs = sorted(d for d in p.iterdir() if (d / "run_info.json").is_file())
    if not runs:
        raise ConfigError(f"{p}: a sweep folder without trial run folders (run_info.json)")
    return runs


def clip_benchmark_metrics(task: str, metrics: dict) -> dict:
    """Our names -> clip_benchmark's (its ``image_retrieval`` is the text query, t2i)."""
    if task == "zeroshot_classification":
        return {"acc1": metrics["top1"], "acc5": metrics["top5"],
                "mean_per_class_recall": metrics["mean_per_class_recall"]}
    out = {}
    for k in (1, 5, 10):
        out[f"image_retrieval_recall@{k}"] = metrics[f"t2i_r{k}"]
        out[f"text_retrieval_recall@{k}"] = metrics[f"i2t_r{k}"]
    return out


def _run_info(trained) -> dict:
    if trained.checkpoint is not None:
        info_file = trained.checkpoint.parent / "run_info.json"
        if info_file.is_file():
            return json.loads(info_file.read_text())
    return {"run_id": trained.name}


def _run_config(trained) -> RunConfig:
    if not trained.run_config:
        raise ConfigError(f"{trained.source}: no run config with the model, so its row (samples seen, "
                          "compute, tokens) cannot be written; export it from a run folder")
    return build_run_config(trained.run_config, source=str(trained.source))


def _merge_existing(table_dir: str, row: dict) -> dict:
    """A previous ``rescored`` row of this checkpoint keeps its other suites' columns."""
    name = f"part-{row['run_id']}-{int(row['samples_seen']):012d}-{STATUS}.parquet"
    loc = storage.join(table_dir, name)
    if not storage.is_file(loc):
        return row
    old = read_results(loc).iloc[-1].to_dict()
    return {**old, **row}


def score_checkpoint(path, scorer: SuiteScorer, results_dir: str | None, json_dir: str | None,
                     device: str, batch_size: int) -> tuple[dict, list[str]]:
    """Score one target; returns (results row, JSON files written)."""
    from clipscale.train.loop import results_row  # the training rows' own columns
    from clipscale.train.plan import plan_run
    from clipscale.trained import load_trained

    trained = load_trained(path)
    cfg = _run_config(trained)
    plan = plan_run(cfg)
    last = plan[-1]  # score at the final stage's resolution and text length, as training does
    model = trained.model.to(device)
    per_suite = scorer.run(model, trained.tokenizer(), last.image_size, last.text_tokens,
                           batch_size=batch_size, device=device)
    metrics = {}
    for suite, data, per_lang in per_suite:
        metrics.update(flatten(suite.name, per_lang))
        if isinstance(data, ClassificationData):
            metrics[f"{suite.name}/classes"] = len(data.classnames[data.languages[0]])
    info = _run_info(trained)
    params = sum(p.numel() for p in trained.model.parameters())
    # h13-loop: results_row takes the run contract; an exported model may lack run_info.json
    from clipscale.train.contract import RunContract
    contract = RunContract.from_record(cfg, {"tokenizer_path": "", "vocab_size": 0, "keep_rates": None,
                                             "languages": "", "english_share": float("nan"), **info}, [])
    row = results_row(contract, plan, trained.state, metrics, STATUS, params)
    table_dir = results_dir or cfg.table_dir
    row = _merge_existing(table_dir, row)

    json_root = json_dir or storage.join(str(table_dir).rstrip("/").rsplit("/", 1)[0], JSON_FOLDER)
    pretrained = f"{row['run_id']}@{trained.state.samples_seen}"
    docs = {}
    for suite, data, per_lang in per_suite:
        for lang, m in per_lang.items():
            docs[f"{suite.name}_{pretrained}_{cfg.model.name}_{lang}_{data.task}.json"] = {
                "dataset": suite.name, "model": cfg.model.name, "pretrained": pretrained,
                "task": data.task, "metrics": clip_benchmark_metrics(data.task, m), "language": lang,
                "checkpoint": str(trained.checkpoint or trained.source), "samples_seen": trained.state.samples_seen,
                "n": m["n"]}
    written = []
    for name, doc in docs.items():  # every suite scored: only now does anything get written
        loc = storage.join(json_root, name.replace("/", "_"))
        storage.write_text(loc, json.dumps(doc, indent=1))
        written.append(loc)
    append_rows(table_dir, [row])
    return row, written
