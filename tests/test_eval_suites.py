"""Evaluation suites: metrics on hand-computed features, each suite format read from small real
files and scored by a small real model, the emoji-world conversion, and bad input."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from test_evaluation import PixelBagCLIP

from clipscale.config import ConfigError
from clipscale.evaluation import SuiteError, SuiteScorer, evaluate, read_suite
from clipscale.evaluation.metrics import classification_metrics, multi_caption_recall
from clipscale.evaluation.suite_config import load_suite_file
from clipscale.text.tokenizer import load_tokenizer

COLORS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


def png(color, size=16) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def test_multi_caption_recall_hand_computed():
    images = torch.eye(3)
    # captions 0,1 -> image 0; 2,3 -> image 1; 4 -> image 2
    texts = torch.tensor([[0.0, 1.0, 0.0],   # image 0's caption, but it points at image 1
                          [1.0, 0.0, 0.0],   # image 0's caption, right
                          [0.0, 0.0, 1.0],   # image 1's, points at image 2
                          [0.0, 0.0, 1.0],   # image 1's, points at image 2
                          [1.0, 0.1, 0.0]])  # image 2's, points at image 0
    text_image = torch.tensor([0, 0, 1, 1, 2])
    # sims [image, text]:
    #   image 0: [0, 1, 0, 0, .995]   best own caption 1 (1.0): no other caption >= 1 -> rank 0
    #   image 1: [1, 0, 0, 0, .0995]  best own 0 (captions 2, 3): others >= 0 are 0, 1, 4 -> rank 3
    #   image 2: [0, 0, 1, 1, 0]      own caption 4 (0): others >= 0 are 0, 1, 2, 3 -> rank 4
    # t2i (caption query, ranks of its image among 3):
    #   c0 true img0 (0) vs img1 (1), img2 (0) -> rank 2; c1 -> 0; c2 true img1 (0) vs img0 0, img2 1 -> 2
    #   c3 -> 2; c4 true img2 (0) vs img0 .995, img1 .0995 -> 2
    r = multi_caption_recall(images, texts, text_image, ks=(1, 4, 5))
    assert r == pytest.approx({"i2t_r1": 1 / 3, "i2t_r4": 2 / 3, "i2t_r5": 1.0,
                               "t2i_r1": 1 / 5, "t2i_r4": 1.0, "t2i_r5": 1.0})
    with pytest.raises(ValueError, match="at least one caption"):
        multi_caption_recall(images, texts[:2], text_image[:2])


def test_classification_metrics_hand_computed():
    classes = torch.eye(3)
    images = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0.2], [1.0, 0.5, 0], [0, 0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    # ranks: 0, 0, 0, 1 (class 0 beats class 1 for image 3), 0; top1 4/5;
    # per-class recall: class 0 2/2, class 1 1/2, class 2 1/1 -> mean 5/6
    m = classification_metrics(images, classes, labels, ks=(1, 2))
    assert m == pytest.approx({"top1": 0.8, "top2": 1.0, "mean_per_class_recall": 5 / 6})


# ---- tiny real suites of solid colours ----

def write_folder_suite(root, names_doc):
    for color in COLORS:
        (root / "imgs" / color).mkdir(parents=True)
        for j in range(2):
            (root / "imgs" / color / f"{j}.png").write_bytes(png(COLORS[color]))
    (root / "names.json").write_text(json.dumps(names_doc), encoding="utf-8")
    return {"name": "colors", "kind": "image_folder", "path": "imgs", "classnames": "names.json"}


NAMES = {"en": {"classnames": {"red": "red", "green": "green", "blue": "blue"},
                "templates": ["a {c} square", "{c}"]},
         "de": {"classnames": {"red": "rot", "green": "grün", "blue": "blau"}, "templates": ["{c}"]}}


def write_wds(root, members_per_sample, classnames=None, retrieval=False):
    (root / "test").mkdir(parents=True)
    with tarfile.open(root / "test" / "0.tar", "w") as tar:
        for i, members in enumerate(members_per_sample):
            for ext, data in members.items():
                info = tarfile.TarInfo(f"s{i:07d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (root / "test" / "nshards.txt").write_text("1\n")
    if retrieval:
        (root / "dataset_type.txt").write_text("retrieval\n")
    else:
        (root / "classnames.txt").write_text("\n".join(classnames) + "\n")
        (root / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\n{c}\n")


def write_retrieval_suite(root, lines):
    (root / "ret" / "images").mkdir(parents=True)
    for color in COLORS:
        (root / "ret" / "images" / f"{color}.png").write_bytes(png(COLORS[color]))
    (root / "ret" / "captions.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return {"name": "xm", "kind": "multilingual_retrieval", "path": "ret"}


RET_LINES = [{"image": "images/red.png", "captions": {"en": ["red", "a red square"], "de": ["rot"]}},
             {"image": "images/green.png", "captions": {"en": ["green"], "de": ["grün", "grünes Quadrat"]}},
             {"image": "images/blue.png", "captions": {"en": ["blue"], "de": ["blau"]}}]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from clipscale.text.tokenizer import train_tokenizer
    d = tmp_path_factory.mktemp("tok")
    words = ["red", "green", "blue", "rot", "grün", "blau", "a", "square", "photo", "of", "Quadrat"]
    captions = [f"{a} {b}" for a in words for b in words]
    return load_tokenizer(train_tokenizer(captions, d / "tok.model", vocab_size=300))


@pytest.fixture
def suites_yaml(tmp_path):
    import yaml
    wds_samples = [{"png": png(COLORS[c]), "cls": str(i).encode()} for i, c in enumerate(COLORS)] * 2
    write_wds(tmp_path / "wds", wds_samples, list(COLORS))
    write_wds(tmp_path / "wds_ret", [{"jpg": png(COLORS[c]), "txt": f"{c}\na {c} square".encode()}
                                     for c in COLORS], retrieval=True)
    suites = [write_folder_suite(tmp_path, NAMES), write_retrieval_suite(tmp_path, RET_LINES),
              {"name": "cb", "kind": "clip_benchmark_wds", "path": "wds"},
              {"name": "cb_ret", "kind": "clip_benchmark_wds", "path": "wds_ret", "language": "en"}]
    (tmp_path / "suites.yaml").write_text(yaml.safe_dump({"suites": suites}))
    return tmp_path / "suites.yaml"


def test_each_suite_format_read_and_scored(suites_yaml, tok):
    suites = load_suite_file(suites_yaml)
    folder, ret, cb, cb_ret = (read_suite(s) for s in suites)
    assert folder.classnames == {"en": ["blue", "green", "red"], "de": ["blau", "grün", "rot"]}
    assert folder.labels.tolist() == [0, 0, 1, 1, 2, 2] and len(folder.images) == 6
    assert ret.captions["en"][0] == ["red", "a red square", "green", "blue"]
    assert ret.captions["en"][1].tolist() == [0, 0, 1, 2] and ret.captions["de"][1].tolist() == [0, 1, 1, 2]
    assert cb.classnames == {"en": ["red", "green", "blue"]} and cb.labels.tolist() == [0, 1, 2] * 2
    assert cb.templates["en"] == ["a photo of a {c}.", "{c}"]
    assert cb_ret.captions["en"][1].tolist() == [0, 0, 1, 1, 2, 2]

    model = PixelBagCLIP(tok.vocab_size)
    out = SuiteScorer(suites).score(model, tok, image_size=16, context_length=8, batch_size=4)
    for lang in ("en", "de"):
        for k in ("top1", "top5", "mean_per_class_recall"):
            assert 0.0 <= out[f"colors/{k}_{lang}"] <= 1.0
        assert out[f"colors/n_{lang}"] == 6 and out[f"xm/n_{lang}"] == 3
        for k in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"):
            assert 0.0 <= out[f"xm/{k}_{lang}"] <= 1.0
        assert out[f"colors/top5_{lang}"] == 1.0  # 3 classes: always within the top 5
    assert out["xm/n_captions_de"] == 4 and out["cb_ret/n_en"] == 3
    assert out["colors/top1_mean"] == pytest.approx((out["colors/top1_en"] + out["colors/top1_de"]) / 2)
    assert out["cb/n_en"] == 6 and "cb/top1_en" in out and "cb_ret/i2t_r1_en" in out


# ---- emoji world: the converted suites agree with the legacy reader ----

def test_emoji_world_suites_match_legacy_eval(tmp_path_factory):
    from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool
    from clipscale.text.tokenizer import train_tokenizer
    d = tmp_path_factory.mktemp("emoji_suites")
    generate_pool(EmojiWorldConfig(num_samples=200, samples_per_shard=200, num_concepts=30,
                                   eval_num_classes=6, eval_images_per_class=2,
                                   eval_retrieval_pairs=8, languages=["en", "de", "ja"]),
                  d / "w", progress=False)
    tok = load_tokenizer(train_tokenizer(d / "w" / "pool", d / "tok.model", vocab_size=600))
    model = PixelBagCLIP(tok.vocab_size)
    legacy = evaluate(model, tok, d / "w" / "eval", 32, 16, 8, "cpu")
    new = SuiteScorer(load_suite_file(d / "w" / "eval" / "suites" / "suites.yaml")).score(
        model, tok, 32, 16, 8)
    for lang in ("en", "de", "ja"):
        assert new[f"emoji_folder/top1_{lang}"] == legacy[f"zeroshot_top1_{lang}"]
        assert new[f"emoji_folder/n_{lang}"] == legacy[f"zeroshot_n_{lang}"] == 12
        for k in ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5"):
            assert new[f"emoji_retrieval/{k}_{lang}"] == legacy[f"{k}_{lang}"]
        assert new["emoji_retrieval/n_" + lang] == legacy[f"retrieval_n_{lang}"] == 8
    assert new["emoji_wds_en/top1_en"] == legacy["zeroshot_top1_en"]
    assert not [p for p in (d / "w" / "eval").iterdir() if p.name.startswith(".")]  # no temp left


# ---- bad input: a clear error naming the file and the field ----

def test_class_missing_in_a_language(tmp_path):
    names = json.loads(json.dumps(NAMES))
    del names["de"]["classnames"]["green"]
    suite = load_suite_file_from(tmp_path, write_folder_suite(tmp_path, names))
    with pytest.raises(SuiteError, match=r"names\.json: field 'de\.classnames': no name for class "
                                         r"folder\(s\) \['green'\]"):
        read_suite(suite)


def test_folder_suite_bad_templates_and_language(tmp_path):
    names = json.loads(json.dumps(NAMES))
    names["de"]["templates"] = ["ein Bild"]
    suite = load_suite_file_from(tmp_path, write_folder_suite(tmp_path, names))
    with pytest.raises(SuiteError, match=r"field 'de\.templates': template 'ein Bild' has no class-name"):
        read_suite(suite)
    with pytest.raises(SuiteError, match=r"names\.json: field 'fr': language missing"):
        read_suite(suite.model_copy(update={"languages": ["fr"]}))


def test_retrieval_image_without_captions(tmp_path):
    lines = [dict(x) for x in RET_LINES]
    lines[1] = {"image": "images/green.png", "captions": {"en": [], "de": [""]}}
    suite = load_suite_file_from(tmp_path, write_retrieval_suite(tmp_path, lines))
    with pytest.raises(SuiteError, match=r"captions\.jsonl:2: field 'captions': image 'images/green.png' has no caption"):
        read_suite(suite)


def test_retrieval_missing_image_and_language(tmp_path):
    lines = [dict(x) for x in RET_LINES]
    lines[2] = {"image": "images/purple.png", "captions": {"en": ["purple"]}}
    suite = load_suite_file_from(tmp_path, write_retrieval_suite(tmp_path, lines))
    with pytest.raises(SuiteError, match=r"captions\.jsonl:3: field 'image': .*purple\.png does not exist"):
        read_suite(suite)
    suite = load_suite_file_from(tmp_path / "b", write_retrieval_suite(tmp_path / "b", RET_LINES))
    with pytest.raises(SuiteError, match=r"field 'captions\.fr': no image has captions in 'fr'"):
        read_suite(suite.model_copy(update={"languages": ["fr"]}))


def test_wds_bad_samples(tmp_path):
    cases = {"nolabel": ([{"png": png(COLORS["red"])}] * 2, r"0\.tar: sample 's0000000': no 'cls' label member"),
             "range": ([{"png": png(COLORS["red"]), "cls": b"7"}] * 2, r"'cls' 7 outside the 3 classes of .*classnames\.txt"),
             "noimage": ([{"cls": b"1"}], r"sample 's0000000': no image member")}
    for name, (samples, msg) in cases.items():
        write_wds(tmp_path / name, samples, list(COLORS))
        suite = load_suite_file_from(tmp_path, {"name": name, "kind": "clip_benchmark_wds", "path": name})
        with pytest.raises(SuiteError, match=msg):
            read_suite(suite)
    write_wds(tmp_path / "ret", [{"png": png(COLORS["red"]), "txt": b"red"}, {"png": png(COLORS["red"])}],
              retrieval=True)
    with pytest.raises(SuiteError, match=r"sample 's0000001': no 'txt' captions member"):
        read_suite(load_suite_file_from(tmp_path, {"name": "r", "kind": "clip_benchmark_wds", "path": "ret"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuiteError, match=r"empty/test/nshards\.txt: missing"):
        read_suite(load_suite_file_from(tmp_path, {"name": "e", "kind": "clip_benchmark_wds", "path": "empty"}))


def test_suite_file_errors(tmp_path):
    (tmp_path / "s.yaml").write_text("suites:\n- {name: a, kind: imagenet, path: x}\n")
    with pytest.raises(ConfigError, match=r"s\.yaml: invalid suite: suites\.0: .*'imagenet'"):
        load_suite_file(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text("- {name: a, kind: multilingual_retrieval, path: x}\n"
                                     "- {name: a, kind: multilingual_retrieval, path: y}\n")
    with pytest.raises(ConfigError, match=r"repeated: \['a'\]"):
        load_suite_file(tmp_path / "s.yaml")


def load_suite_file_from(root, suite: dict):
    import yaml
    (root / "one.yaml").write_text(yaml.safe_dump(suite))
    return load_suite_file(root / "one.yaml")[0]


def test_finals_reads_a_rescored_row_with_its_training_row():
    import pandas as pd

    from analysis.load import finals, results_frame
    base = {"sweep": "s", "model": "tiny-s", "compute": 1.0, "params": 10}
    rows = [{**base, "run_id": "a", "samples_seen": 1, "status": "running", "zeroshot_top1_mean": 0.1},
            {**base, "run_id": "a", "samples_seen": 2, "status": "finished", "zeroshot_top1_mean": 0.2},
            {**base, "run_id": "a", "samples_seen": 2, "status": "rescored", "inet/top1_mean": 0.3},
            {**base, "run_id": "b", "samples_seen": 2, "status": "finished", "zeroshot_top1_mean": 0.4}]
    last = finals(results_frame(pd.DataFrame(rows)))
    assert list(last["run_id"]) == ["a", "b"] and list(last["status"]) == ["finished", "finished"]
    assert list(last["zeroshot_top1_mean"]) == [0.2, 0.4]
    assert last["inet/top1_mean"].iloc[0] == 0.3 and np.isnan(last["inet/top1_mean"].iloc[1])


def test_run_config_suites_resolved_and_checked(tmp_path):
    import yaml

    from clipscale.config import load_run_config
    run = {"data": {"train_shards": "pool"},
           "eval": {"suites": [{"name": "xm", "kind": "multilingual_retrieval", "path": "ret"},
                               {"name": "inet", "kind": "image_folder", "path": "val", "classnames": "n.json"}]}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    cfg = load_run_config(tmp_path / "run.yaml")
    assert cfg.eval.suites[0].path == str(tmp_path / "ret")
    assert cfg.eval.suites[1].classnames == str(tmp_path / "n.json")
    run["eval"]["suites"][1]["name"] = "xm"
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    with pytest.raises(ConfigError, match=r"run\.yaml:\n  eval: suite names must be unique; repeated: \['xm'\]"):
        load_run_config(tmp_path / "run.yaml")
    run["eval"]["suites"] = [{"name": "a", "kind": "image_folder", "path": "val"}]
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    with pytest.raises(ConfigError, match=r"eval\.suites\.0\.image_folder\.classnames"):
        load_run_config(tmp_path / "run.yaml")
