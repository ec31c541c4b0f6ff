"""`clipscale eval` on a tiny trained run (2 workers, ZeRO-2 on CPU): re-scored on a second suite
without training, rows merged per checkpoint, clip_benchmark JSON, the analysis reading the new
suite's column, and a bad suite refused with nothing written."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_train import REPO, run_cli, tiny_config, write_yaml

from clipscale.results import read_results

pytestmark = pytest.mark.slow


def eval_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clipscale.cli", "eval", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tiny_pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("evalrun")
    cfg = tiny_config(tiny_pool, out, "r", samples_seen=1024, checkpoint_every_samples=1024)
    cfg["eval"]["every_samples"] = 1024
    proc = run_cli(["train", str(write_yaml(cfg, out / "r.yaml"))])
    assert proc.wait(timeout=600) == 0
    return out


def test_eval_rescores_a_run_on_a_second_suite(trained, tiny_pool):
    suites = tiny_pool / "eval" / "suites"
    before = read_results(trained / "results")
    assert list(before["status"]) == ["finished"]
    done = eval_cli(trained / "r", "--suite", suites / "suites.yaml", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "emoji_folder/top1_mean" in done.stdout.splitlines()[-2]

    df = read_results(trained / "results")
    train_row = df[df["status"] == "finished"].iloc[0]
    row = df[df["status"] == "rescored"].iloc[0]
    for col in ("run_id", "samples_seen", "compute", "params", "image_tokens", "text_tokens"):
        assert row[col] == train_row[col]
    # the same weights, consolidated from the ZeRO-2 shards, score what training scored
    for lang in ("en", "de", "ja"):
        assert row[f"emoji_folder/top1_{lang}"] == pytest.approx(train_row[f"zeroshot_top1_{lang}"], abs=1e-9)
        assert row[f"emoji_retrieval/i2t_r1_{lang}"] == pytest.approx(train_row[f"i2t_r1_{lang}"], abs=1e-9)
    assert row["emoji_folder/n_en"] == train_row["zeroshot_n_en"] and row["emoji_folder/classes"] == 20

    # a second suite later: its columns join the same rescored row
    wds_ret = suites / "wds_retrieval" / "de"
    done = eval_cli(trained / "r", "--suite", f"kind=clip_benchmark_wds,name=ret_de,path={wds_ret},language=de")
    assert done.returncode == 0, done.stderr
    df = read_results(trained / "results")
    rescored = df[df["status"] == "rescored"]
    assert len(rescored) == 1 and len(df) == 2
    assert rescored.iloc[0]["emoji_folder/top1_en"] == row["emoji_folder/top1_en"]
    assert rescored.iloc[0]["ret_de/i2t_r1_de"] == pytest.approx(train_row["i2t_r1_de"], abs=1e-9)

    files = sorted((trained / "clip_benchmark").glob("*.json"))
    doc = json.loads((trained / "clip_benchmark" / "emoji_folder_r@1024_tiny-s_de_zeroshot_classification.json").read_text())
    assert {"dataset", "model", "pretrained", "task", "metrics", "language"} <= set(doc)
    assert doc["metrics"]["acc1"] == pytest.approx(train_row["zeroshot_top1_de"], abs=1e-9)
    assert set(doc["metrics"]) == {"acc1", "acc5", "mean_per_class_recall"}
    ret = json.loads((trained / "clip_benchmark" / "ret_de_r@1024_tiny-s_de_zeroshot_retrieval.json").read_text())
    assert ret["metrics"]["text_retrieval_recall@1"] == pytest.approx(train_row["i2t_r1_de"], abs=1e-9)
    assert len(files) == 14 + 14 + 1 + 1  # folder and retrieval per language, wds en, ret_de

    # the analysis reads the training row and its rescored row as one evaluation
    from analysis.load import finals, load_results
    last = finals(load_results(trained / "results"))
    assert len(last) == 1 and last.iloc[0]["status"] == "finished"
    assert last.iloc[0]["ret_de/t2i_r5_de"] == rescored.iloc[0]["ret_de/t2i_r5_de"]
    assert last.iloc[0]["zeroshot_top1_en"] == train_row["zeroshot_top1_en"]


def test_eval_bad_suite_writes_nothing(trained, tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "captions.jsonl").write_text('{"image": "x.png", "captions": {}}\n')
    (tmp_path / "bad" / "x.png").write_bytes(b"")
    table = tmp_path / "table"
    done = eval_cli(trained / "r", "--suite", f"kind=multilingual_retrieval,name=bad,path={tmp_path / 'bad'}",
                    "--results", table, "--json-dir", tmp_path / "json")
    assert done.returncode == 2
    assert "captions.jsonl:1: field 'captions': image 'x.png' has no caption" in done.stderr
    assert not table.exists() and not (tmp_path / "json").exists()
    done = eval_cli(tmp_path, "--suite", "kind=image_folder,name=x,path=y")
    assert done.returncode == 2 and "classnames: Field required" in done.stderr
