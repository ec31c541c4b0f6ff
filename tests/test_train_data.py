"""The training stream on bad input: corrupt images, undecodable or empty captions and samples
without an image are skipped and counted, never a crash."""
from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest
import ray
from PIL import Image

from clipscale.data.shards import Sample, list_shards, write_tar


def jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), color).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def ray_local():
    from clipscale.ray_setup import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()


def test_bad_samples_are_skipped_and_counted(tmp_path, ray_local):
    from clipscale.text.tokenizer import train_tokenizer
    from clipscale.train.counters import skip_counts
    from clipscale.train.data import train_dataset

    good = [Sample(key=f"g{i}", image=jpeg((i * 20, 100, 50)), image_ext="jpg",
                   text=f"a red cat number {i}", meta={"language": "en"}) for i in range(10)]
    write_tar(tmp_path / "a.tar", good[:5] + [
        Sample(key="corrupt", image=b"\xff\xd8\xff\xe0 not a jpeg", image_ext="jpg", text="broken image"),
        Sample(key="empty", image=jpeg((0, 0, 0)), image_ext="jpg", text="   "),
        Sample(key="noimage", text="a caption without an image"),
    ])
    # an undecodable caption: write raw bytes by hand
    import tarfile
    with tarfile.open(tmp_path / "b.tar", "w") as tar:
        for s in good[5:]:
            for ext, data in (("jpg", s.image), ("txt", s.text.encode())):
                info = tarfile.TarInfo(f"{s.key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for ext, data in (("jpg", jpeg((1, 2, 3))), ("txt", b"\xff\xfe invalid utf-8 \xc3\x28")):
            info = tarfile.TarInfo(f"badtext.{ext}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    tok = train_tokenizer([s.text for s in good] * 20, tmp_path / "tok.model", vocab_size=48,
                          byte_fallback=False)
    ds = train_dataset(list_shards(tmp_path), tokenizer_path=str(tok), image_size=32,
                       context_length=16, counter_name="skips-test", read_parallelism=1)
    rows = ds.take_all()
    assert sorted(r["key"] for r in rows) == sorted(s.key for s in good)
    assert all(r["image"].shape == (32, 32, 3) and r["image"].dtype == np.uint8 for r in rows)
    assert all(r["tokens"].shape == (16,) for r in rows)
    counts = skip_counts("skips-test")
    assert counts == {"corrupt_image": 1, "empty_caption": 1, "no_image": 1, "undecodable_caption": 1}


def test_run_counters_outlive_the_placement_group_of_the_trial_that_made_them(ray_local):
    """A trial makes the cluster's run counters from inside its placement group when it is the
    first to use them; a lost trial driver or node removes that group. The counters must not
    have been placed in it (Ray kills an actor whose group is removed, and a restartable detached
    one then waits forever for a bundle that no longer exists: the chaos sweep hung on exactly that)."""
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from clipscale.train import counters

    try:  # an earlier test made them outside any group: this one must be the first to make them
        ray.kill(ray.get_actor(counters.ACTOR_NAME, namespace=counters.NAMESPACE), no_restart=True)
        time.sleep(0.5)
    except ValueError:
        pass

    @ray.remote(num_cpus=0.01)
    def make_counters() -> None:
        counters.add_skips("skips-pg-test", {"bad_image": 3})
        counters.set_curation("curation-pg-test", 0, "shard-0", {"en": 4}, {"en": 1})

    pg = placement_group([{"CPU": 0.01}])
    ray.get(pg.ready(), timeout=60)
    ray.get(make_counters.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        pg, placement_group_capture_child_tasks=True)).remote(), timeout=120)
    remove_placement_group(pg)
    time.sleep(1.0)  # Ray kills what was placed in the removed group
    handle = counters.run_counters()
    assert ray.get(handle.skip_counts.remote("skips-pg-test"), timeout=60) == {"bad_image": 3}
    assert ray.get(handle.kept_share.remote("curation-pg-test", 0), timeout=60) == {"en": 0.25}
    assert ray.get(handle.skip_counts.remote("another-run"), timeout=60) == {}  # counts are per run


def test_data_summary_is_remembered_until_a_shard_changes(tmp_path):
    """A lane prepares every trial on the same shards: the second summary comes from memory, and
    a rewritten shard (another size or modification time) is read again."""
    from clipscale.run_inputs import data_summary

    def write(path, langs):
        write_tar(path, [Sample(key=f"k{i}", image=jpeg((i, 0, 0)), image_ext="jpg", text=f"caption {i}",
                                meta={"language": lang}) for i, lang in enumerate(langs)])

    write(tmp_path / "a.tar", ["en", "en", "de"])
    write(tmp_path / "b.tar", ["fr"])
    shards = list_shards(tmp_path)
    first = data_summary(shards, 100)
    assert first[1] == {"en": 2, "de": 1, "fr": 1} and len(first[0]) == 4
    first[0].append("changed by the caller")  # the remembered lists are not the caller's
    assert data_summary(shards, 100) == (["caption 0", "caption 1", "caption 2", "caption 0"], first[1])
    write(tmp_path / "b.tar", ["fr", "fr", "ja"])
    os.utime(tmp_path / "b.tar", ns=(time.time_ns() + 10**9,) * 2)
    assert data_summary(shards, 100)[1] == {"en": 2, "de": 1, "fr": 2, "ja": 1}
