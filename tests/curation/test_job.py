"""The Ray Data job end to end on small pools these tests write: bad input counted, not fatal;
1 and 2 workers give identical outputs; re-runs resume; online mode exposes probabilities."""
import io
import json
import random
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clipscale.config import ConfigError
from clipscale.curation.balance import ThresholdError, entry_probabilities, keep_probability
from clipscale.curation.config import CurationConfig, load_curation_config
from clipscale.curation.job import run_curation
from clipscale.curation.metadata import MetadataError, load_metadata, write_metadata
from clipscale.curation.sampling import online_choice
from clipscale.data.shards import Sample, iter_shard, write_parquet, write_tar

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n-not-decoded-by-curation"
EN = ["apple", "banana", "kiwi", "plum", "fig"]
DE = ["Apfel", "Birne", "Feige"]


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    import ray

    from clipscale.ray_setup import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()


def raw_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def good_samples(shard: int, n: int, rng: random.Random) -> list[Sample]:
    out = []
    for i in range(n):
        if rng.random() < 0.7:  # head: apple in most English captions
            words = ["apple"] if rng.random() < 0.8 else [rng.choice(EN)]
            text, lang = f"a photo of {' and '.join(words)} on a table", "en"
        else:
            text, lang = f"ein Foto von {rng.choice(DE)}", "de"
        out.append(Sample(key=f"s{shard}-{i:04d}", image=PNG, image_ext="png", text=text,
                          meta={"language": lang}))
    return out


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    rng = random.Random(0)
    write_metadata(root / "meta", "en", EN)
    write_metadata(root / "meta", "de", DE)
    pool = root / "pool"
    pool.mkdir()
    for shard in (0, 3, 4):
        write_tar(pool / f"{shard:05d}.tar", good_samples(shard, 150, rng))
    bad = [
        ("bad-utf8.png", PNG), ("bad-utf8.txt", b"an apple \xff\xfe broken"),
        ("bad-utf8.json", b'{"language": "en"}'),
        ("empty.png", PNG), ("empty.txt", b"   "),
        ("huge.png", PNG), ("huge.txt", ("an apple " * 120_000).encode()),
        ("noimage.txt", b"a kiwi without picture"), ("noimage.json", b'{"language": "en"}'),
        ("swahili.png", PNG), ("swahili.txt", b"picha ya tunda"), ("swahili.json", b'{"language": "sw"}'),
        ("badjson.png", PNG), ("badjson.txt", b"a plum on a plate"), ("badjson.json", b"{not json"),
        ("multi.png", PNG), ("multi.txt", b"a fig on a plate"),
        ("multi.json", json.dumps({"language": "en", "captions": [
            "a banana lies on the kitchen table of the house", "nothing to see here"]}).encode()),
    ]
    raw_tar(pool / "00001.tar", bad)
    (pool / "00002.tar").write_bytes(b"this is not a tar archive at all" * 50)
    return root


def config(pool, out, **kw) -> CurationConfig:
    return CurationConfig(input=str(pool / "pool"), output=str(out), metadata=str(pool / "meta"),
                          t_en=40, seed=5, lid_languages=["en", "de"], **kw)


def decisions(out: Path) -> list[dict]:
    rows = []
    for f in sorted((out / "decisions").glob("*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return sorted(rows, key=lambda r: (r["key"], r["caption_index"]))


@pytest.fixture(scope="module")
def two_worker_run(pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("out2")
    return out, run_curation(config(pool, out, workers=2), progress=False)


def test_bad_input_is_counted_and_nothing_is_lost(two_worker_run):
    out, report = two_worker_run
    assert [Path(c["shard"]).name for c in report["shards"]["corrupt"]] == ["00002.tar"]
    assert report["shards"] == dict(report["shards"], total=5, counted=4, sampled=4)
    assert report["problems"] == {"bad_json": 1, "empty_caption": 1, "no_image": 1,
                                  "undecodable_caption": 1, "truncated_caption": 1}
    assert report["no_metadata_languages"] == {"sw": 1}
    rows = decisions(out)
    assert report["samples"] == 3 * 150 + 7 and report["captions"] == len(rows) == 459
    by_key = {r["key"]: r for r in rows}
    assert by_key["huge"]["matched_entry_ids"] == [0] and by_key["huge"]["keep_prob"] > 0
    assert by_key["noimage"]["problem"] == "no_image" and not by_key["noimage"]["kept"]
    assert by_key["swahili"]["language"] == "sw" and by_key["swahili"]["problem"] == "no_metadata"
    assert by_key["badjson"]["language"] == "en"  # LID, as the json could not be read


def test_counts_thresholds_and_keep_probabilities_agree_with_the_decisions(pool, two_worker_run):
    out, report = two_worker_run
    metadata = load_metadata(pool / "meta")
    rows = decisions(out)
    counts = {lang: np.zeros(len(e), dtype=np.int64) for lang, e in metadata.items()}
    for r in rows:
        if r["matched_entry_ids"]:
            counts[r["language"]][r["matched_entry_ids"]] += 1
    thresholds = json.loads((out / "thresholds.json").read_text())
    assert thresholds["t_lang"]["en"] == 40 and report["t_en"] == 40
    en = counts["en"]
    assert report["english_tail_share"] == pytest.approx(en[en < 40].sum() / en.sum())
    for r in rows:
        lang = r["language"]
        if r["matched_entry_ids"]:
            p_e = entry_probabilities(counts[lang], thresholds["t_lang"][lang])
            assert r["keep_prob"] == pytest.approx(keep_probability(r["matched_entry_ids"], p_e))
    # Exactly one chosen caption per image with a match; kept only if chosen.
    chosen = Counter(r["key"] for r in rows if r["chosen"])
    assert set(chosen.values()) == {1}
    assert all(r["chosen"] for r in rows if r["kept"])
    multi = [r for r in rows if r["key"] == "multi"]
    assert len(multi) == 3 and multi[2]["keep_prob"] == 0.0 and not multi[2]["chosen"]
    # Report: head capped, tail kept.
    lang_en = report["languages"]["en"]
    assert lang_en["max_entry_count_before"] > 200 and lang_en["max_entry_count_after"] < 80
    # Tail captions are kept with probability 1; the only tail matches lost are on the captions
    # an image did not pick (the multi-caption sample).
    assert 0.95 < lang_en["tail_kept_share"] < 1.0
    single = [r for r in rows if r["key"] != "multi" and r["language"] == "en" and r["keep_prob"] == 1.0]
    assert single and all(r["kept"] for r in single)
    assert (out / "curation_report.png").stat().st_size > 1000


def test_curated_shards_hold_the_kept_samples_with_their_language(two_worker_run):
    out, report = two_worker_run
    kept = {r["key"]: r for r in decisions(out) if r["kept"]}
    written = [s for f in sorted((out / "shards").glob("*.tar")) for s in iter_shard(f)]
    assert len(written) == report["written"] == len(kept)
    for s in written:
        assert s.meta["language"] == kept[s.key]["language"] and s.image == PNG
        assert s.meta["curation"]["keep_prob"] == pytest.approx(kept[s.key]["keep_prob"])
    assert sum(v["kept"] for v in report["languages"].values()) == len(kept)


def test_one_worker_gives_identical_outputs_via_the_cli(pool, two_worker_run, tmp_path, capsys):
    import argparse

    import yaml

    from clipscale.cli.curate import register

    out2, _ = two_worker_run
    cfg_file = tmp_path / "curate.yaml"
    cfg = config(pool, tmp_path / "out1").model_dump(exclude_none=True)
    cfg_file.write_text(yaml.safe_dump({"curate": cfg}))
    parser = argparse.ArgumentParser(prog="clipscale")
    register(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["curate", "--config", str(cfg_file), "--workers", "1", "--quiet"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["languages"]["en"]["t_lang"] == 40
    out1 = tmp_path / "out1"
    assert decisions(out1) == decisions(out2)
    for f in sorted((out2 / "shards").glob("*.tar")):
        assert (out1 / "shards" / f.name).read_bytes() == f.read_bytes()


def test_rerun_skips_finished_shards(pool, two_worker_run):
    out, first = two_worker_run
    before = {f: f.stat().st_mtime_ns for f in (out / "shards").iterdir()}
    again = run_curation(config(pool, out, workers=2), progress=False)
    assert again["shards"]["resumed"] == 4
    assert {f: f.stat().st_mtime_ns for f in (out / "shards").iterdir()} == before
    assert again["languages"] == first["languages"]


def test_parquet_pool_in_online_mode_exposes_keep_probabilities(tmp_path, pool):
    rng = random.Random(1)
    (tmp_path / "pool").mkdir()
    for shard in range(2):
        write_parquet(tmp_path / "pool" / f"{shard:05d}.parquet", good_samples(shard, 120, rng))
    cfg = CurationConfig(input=str(tmp_path / "pool"), output=str(tmp_path / "out"),
                         metadata=str(pool / "meta"), t_en=30, seed=2, mode="online")
    report = run_curation(cfg, progress=False)
    rows = {r["key"]: r for r in decisions(tmp_path / "out")}
    written = [s for f in sorted((tmp_path / "out" / "shards").glob("*.parquet")) for s in iter_shard(f)]
    assert len(written) == report["written"] == sum(r["keep_prob"] > 0 for r in rows.values())
    for s in written:
        probs = s.meta["curation"]["keep_probs"]
        assert probs == [pytest.approx(rows[s.key]["keep_prob"])]
        assert (online_choice(s.key, probs, 2, epoch=0) is not None) == rows[s.key]["kept"]
        assert s.image_ext == "png"


def test_english_less_pool_and_missing_metadata_are_clear_errors(tmp_path, pool):
    (tmp_path / "pool").mkdir()
    write_tar(tmp_path / "pool" / "00000.tar",
              [Sample(key=f"k{i}", image=PNG, image_ext="png", text="ein Apfel",
                      meta={"language": "de"}) for i in range(20)])
    cfg = CurationConfig(input=str(tmp_path / "pool"), output=str(tmp_path / "out"),
                         metadata=str(pool / "meta"))
    with pytest.raises(ThresholdError, match="English-less"):
        run_curation(cfg, progress=False)
    with pytest.raises(MetadataError, match="does not exist"):
        run_curation(cfg.model_copy(update={"metadata": str(tmp_path / "none")}), progress=False)


def test_config_errors_name_the_file_and_the_field(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("input: x\noutput: y\nmetadata: z\nt_en: -3\nthreshold: 5\n")
    with pytest.raises(ConfigError) as e:
        load_curation_config(bad)
    assert str(bad) in str(e.value) and "t_en" in str(e.value) and "threshold: unknown key" in str(e.value)
    bad.write_text("input: x\noutput: y\nmetadata: z\nt_en: 3\ntarget_tail_share: 0.1\n")
    with pytest.raises(ConfigError, match="not both"):
        load_curation_config(bad)
