"""Storage locations (clipscale/storage.py): local paths and URIs through the same helpers, and
everything that keeps a run's files on them (results table, sweep state, shards, eval sets,
tokenizer, config paths). ``file://`` URIs take the same pyarrow calls as s3:// and gs://."""
from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pyarrow.fs
import pytest

from clipscale import storage
from clipscale.config import ConfigError, build_run_config, resolve_paths
from clipscale.data.shards import (
    Sample,
    ShardError,
    iter_shard,
    list_shards,
    write_shard,
)
from clipscale.results import ID_COLUMNS, append_rows, read_results


def uri(path: Path) -> str:
    return path.resolve().as_uri()  # file:///...


@pytest.fixture(params=["local", "uri"])
def place(request, tmp_path):
    """The same folder as a local path and as a file:// URI."""
    return str(tmp_path / "store") if request.param == "local" else uri(tmp_path) + "/store"


def test_uri_syntax_and_errors_name_the_field():
    assert storage.is_uri("s3://b/p") and storage.is_uri("file:///tmp/x") and storage.is_uri("gs://b")
    assert not storage.is_uri("runs") and not storage.is_uri("/abs/runs") and not storage.is_uri("C:/x")
    assert not storage.is_uri(Path("/abs"))
    for good in ("s3://b/p", "gs://b", "file:///tmp/x", "s3://b/p?region=eu-west-1"):
        storage.check_uri(good)
    for bad, msg in [("foo://b/p", "unsupported storage scheme 'foo'"), ("file://host/x", "no host"),
                     ("s3:///p", "no bucket")]:
        with pytest.raises(ValueError, match=msg):
            storage.check_uri(bad)
    with pytest.raises(storage.StorageError, match="^output_dir: foo://b/p: .*Unrecognized filesystem"):
        storage.check("foo://b/p", "output_dir")


def test_resolve_and_join_agree_with_pyarrow(tmp_path):
    # gs:// and s3:// with a region resolve without the network
    for loc in (uri(tmp_path) + "/a/b", "gs://bucket/a/b", "s3://bucket/a/b?region=us-east-1"):
        fs, path = storage.resolve(loc)
        ref_fs, ref_path = pyarrow.fs.FileSystem.from_uri(loc)
        assert path == ref_path and type(fs) is type(ref_fs)
    assert storage.resolve("s3://bucket/a/?region=us-east-1")[1] == "bucket/a"
    assert storage.resolve("s3://bucket/x?region=us-east-1")[0] is storage.resolve("s3://bucket/y?region=us-east-1")[0]
    assert storage.join("s3://b/p/?region=r", "run", "x.json") == "s3://b/p/run/x.json?region=r"
    assert storage.join("file:///tmp/p", "a") == "file:///tmp/p/a"
    assert storage.join("/tmp/p", "a", "b") == "/tmp/p/a/b"
    assert storage.name("gs://b/p/tokenizer.model") == "tokenizer.model" == storage.name("/x/tokenizer.model")
    assert storage.absolute("s3://b/p") == "s3://b/p"
    assert storage.absolute("runs", tmp_path) == str(tmp_path / "runs")


def test_read_write_list_on_local_paths_and_uris(place):
    f = storage.join(place, "sub", "a.json")
    assert not storage.exists(f) and storage.list_files(place) == []
    storage.write_text(f, '{"x": 1}')
    storage.write_bytes(storage.join(place, "sub", "b.bin"), b"\x00\x01")
    assert storage.exists(f) and storage.is_file(f) and storage.is_dir(storage.join(place, "sub"))
    assert json.loads(storage.read_text(f)) == {"x": 1}
    storage.write_text(f, '{"x": 2}')  # replaced whole
    assert json.loads(storage.read_text(f)) == {"x": 2}
    sub = storage.join(place, "sub")
    assert storage.list_files(sub) == [storage.join(sub, "a.json"), storage.join(sub, "b.bin")]
    assert storage.list_files(sub, "*.json") == [f] == storage.glob(storage.join(sub, "*.json"))
    log = storage.join(place, "log.jsonl")
    storage.append_text(log, "1\n")
    storage.append_text(log, "2\n")
    assert storage.read_text(log) == "1\n2\n"
    assert not [n for n in storage.list_files(sub) if storage.name(n).startswith(".")]  # no temp files left
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(place, "missing"))


def test_local_copy_is_cached_per_object_and_safe_under_concurrency(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPSCALE_LOCAL_DIR", str(tmp_path / "node"))
    src = uri(tmp_path) + "/shared/tokenizer.model"
    storage.write_bytes(src, b"v1" * 1000)
    copies = []
    threads = [threading.Thread(target=lambda: copies.append(storage.local_copy(src))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(copies)) == 1 and Path(copies[0]).read_bytes() == b"v1" * 1000
    assert copies[0].startswith(str(tmp_path / "node")) and Path(copies[0]).name == "tokenizer.model"
    storage.write_bytes(src, b"v2-longer" * 1000)  # a replaced object is fetched again
    assert Path(storage.local_copy(src)).read_bytes() == b"v2-longer" * 1000
    assert storage.local_copy(str(tmp_path / "x")) == str(tmp_path / "x")  # local paths are used in place
    with pytest.raises(FileNotFoundError):
        storage.local_copy(uri(tmp_path) + "/shared/none")


def row(run: str, samples: int, status: str, acc: float) -> dict:
    r = {c: 0 for c in ID_COLUMNS}
    r.update(run_id=run, sweep="s", model="tiny", image_reduction="none", text_reduction="truncate",
             languages="en", samples_seen=samples, status=status, timestamp="t", zeroshot_top1_mean=acc)
    return r


def test_results_table_and_sweep_state_on_a_uri(tmp_path):
    from clipscale.sweep.expand import Trial
    from clipscale.sweep.tune import check_state, finished_trials

    local, remote = tmp_path / "local", uri(tmp_path) + "/remote/results"
    rows = [row("a", 64, "running", 0.1), row("a", 128, "finished", 0.2), row("b", 64, "running", 0.3)]
    assert finished_trials(remote) == set()
    for r in rows:
        append_rows(local, [r])
        loc = append_rows(remote, [r])
    assert loc == f"{remote}/part-b-000000000064-running.parquet"
    got, ref = read_results(remote), read_results(local)
    assert got.equals(ref) and list(got["run_id"]) == ["a", "a", "b"]
    assert read_results(loc)["run_id"].tolist() == ["b"]  # one part file
    assert finished_trials(remote) == {"a"}
    with pytest.raises(FileNotFoundError, match="no results"):
        read_results(uri(tmp_path) + "/nothing")

    root = uri(tmp_path) + "/remote"
    trials = [Trial("s-000-abc", {"model": "tiny"})]
    check_state(root, "s", trials, resume=False)
    assert json.loads(storage.read_text(root + "/sweep.json"))["trials"] == ["s-000-abc"]
    with pytest.raises(ConfigError, match="pass --resume"):
        check_state(root, "s", trials, resume=False)
    check_state(root, "s", trials, resume=True)
    with pytest.raises(ConfigError, match="no sweep at"):
        check_state(uri(tmp_path) + "/other", "s", trials, resume=True)


def test_analysis_loads_a_results_table_uri(tmp_path):
    from analysis.load import load_results

    remote = uri(tmp_path) + "/results"
    append_rows(remote, [row("a", 64, "finished", 0.5)])
    df = load_results(remote)
    assert df["run_id"].tolist() == ["a"] and df["zeroshot_top1_mean"].tolist() == [0.5]


BASE = {"data": {"train_shards": "pool"}, "model": {"name": "tiny-s"}, "stages": [{"image_size": 32}],
        "train": {"samples_seen": 2048, "global_batch_size": 64}}


def test_config_keeps_uris_and_refuses_bad_ones(tmp_path):
    cfg = resolve_paths(build_run_config({**BASE, "name": "r", "output_dir": "s3://bkt/exp",
                                          "eval": {"eval_dir": "gs://bkt/eval"}}), tmp_path)
    assert (cfg.output_dir, cfg.run_dir, cfg.table_dir) == ("s3://bkt/exp", "s3://bkt/exp/r", "s3://bkt/exp/results")
    assert cfg.eval.eval_dir == "gs://bkt/eval" and cfg.data.train_shards == str(tmp_path / "pool")
    local = resolve_paths(build_run_config({**BASE, "name": "r", "output_dir": "out"}), tmp_path)
    assert local.run_dir == str(tmp_path / "out" / "r") and local.table_dir == str(tmp_path / "out" / "results")
    with pytest.raises(ConfigError, match=r"output_dir: ftp://x/y: unsupported storage scheme"):
        build_run_config({**BASE, "output_dir": "ftp://x/y"})
    with pytest.raises(ConfigError, match=r"results_dir: file://host/r: a file URI names no host"):
        build_run_config({**BASE, "results_dir": "file://host/r"})


def test_sweep_on_a_uri_places_every_trial_there(tmp_path):
    import yaml

    from clipscale.sweep.expand import load_trials

    p = tmp_path / "sweep.yaml"
    p.write_text(yaml.safe_dump({"name": "s", "base": {**BASE, "output_dir": "gs://bkt/exp"},
                                 "axes": {"model": ["tiny-s", "tiny"]}}))
    _, root, trials = load_trials(p)
    assert root == "gs://bkt/exp/s"
    for trial, cfg in trials:
        assert cfg.run_dir == f"gs://bkt/exp/s/{trial.id}" and cfg.table_dir == "gs://bkt/exp/s/results"
        assert cfg.tokenizer.path == "gs://bkt/exp/s/tokenizer.model"


def samples(n: int, prefix: str) -> list[Sample]:
    return [Sample(key=f"{prefix}{i:03d}", image=png(i), image_ext="png", text=f"caption {i}",
                   meta={"language": "en", "label": i % 2}) for i in range(n)]


def png(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i * 20 % 256, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def test_shards_read_from_a_uri_like_from_a_path(tmp_path):
    pool = tmp_path / "pool"
    write_shard(pool / "shard-0.tar", samples(3, "a"))
    write_shard(pool / "shard-1.parquet", samples(2, "b"))
    remote = uri(pool)
    found = list_shards(remote)
    assert found == [remote + "/shard-0.tar", remote + "/shard-1.parquet"]
    assert list_shards(remote + "/*.tar") == [remote + "/shard-0.tar"]
    for local, loc in zip(list_shards(pool), found):
        a, b = list(iter_shard(local)), list(iter_shard(loc))
        assert [(s.key, s.text, s.image, s.meta) for s in a] == [(s.key, s.text, s.image, s.meta) for s in b]
    with pytest.raises(ShardError, match="does not exist"):
        list(iter_shard(remote + "/shard-9.tar"))
    with pytest.raises(ShardError, match="glob matches no shard"):
        list_shards(remote + "/*.zip")
    with pytest.raises(ShardError, match="does not exist"):
        list_shards(remote + "/none")


def test_eval_sets_and_tokenizer_from_a_uri(tmp_path, monkeypatch):
    from clipscale.evaluation.sets import EvalSets
    from clipscale.text.tokenizer import (
        TokenizerNotFoundError,
        load_tokenizer,
        train_tokenizer,
    )

    monkeypatch.setenv("CLIPSCALE_LOCAL_DIR", str(tmp_path / "node"))
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "classes.json").write_text(json.dumps({"languages": ["en"], "classes": [
        {"label": 0, "names": {"en": "red"}}, {"label": 1, "names": {"en": "blue"}}]}))
    write_shard(ev / "zeroshot.tar", samples(4, "z"))
    write_shard(ev / "retrieval" / "en.tar", samples(3, "r"))
    sets = EvalSets.load(uri(ev), 16)
    assert sets.zeroshot_images.shape == (4, 16, 16, 3) and len(sets.retrieval["en"][1]) == 3

    words = ["red", "blue", "green", "cat", "dog", "sun", "moon", "tree", "house", "car", "boat",
             "fish", "bird", "star", "rain", "snow"]
    captions = [f"a {words[i % 16]} and a {words[(i * 7) % 16]} number {i}" for i in range(400)]
    local = train_tokenizer(captions, tmp_path / "tok.model", vocab_size=300)
    remote = uri(tmp_path) + "/run/tokenizer.model"
    storage.write_bytes(remote, local.read_bytes())
    assert load_tokenizer(remote).encode("a red cat") == load_tokenizer(local).encode("a red cat")
    with pytest.raises(TokenizerNotFoundError, match="tokenizer not found"):
        load_tokenizer(uri(tmp_path) + "/run/none.model")
