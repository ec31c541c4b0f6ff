"""The training stream on bad input: corrupt images, undecodable or empty captions and samples
without an image are skipped and counted, never a crash."""
from __future__ import annotations

import io
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
    from clipscale.train.data import skip_counter, train_dataset

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
    counter = skip_counter("skips-test")
    ds = train_dataset(list_shards(tmp_path), tokenizer_path=str(tok), image_size=32,
                       context_length=16, counter_name="skips-test", read_parallelism=1)
    rows = ds.take_all()
    assert sorted(r["key"] for r in rows) == sorted(s.key for s in good)
    assert all(r["image"].shape == (32, 32, 3) and r["image"].dtype == np.uint8 for r in rows)
    assert all(r["tokens"].shape == (16,) for r in rows)
    counts = ray.get(counter.get.remote())
    assert counts == {"corrupt_image": 1, "empty_caption": 1, "no_image": 1, "undecodable_caption": 1}


def test_run_counters_outlive_the_placement_group_of_the_trial_that_made_them(ray_local):
    """A trial makes its run's skip and curation counters from inside its placement group; a lost
    trial driver or node removes that group. The counters must not have been placed in it (Ray
    kills an actor whose group is removed, and a restartable detached one then waits forever for
    a bundle that no longer exists: the chaos sweep hung on exactly that)."""
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from clipscale.train.data import skip_counter
    from clipscale.train.online_stream import curation_counter

    @ray.remote(num_cpus=0.01)
    def make_counters() -> None:
        ray.get(skip_counter("skips-pg-test").add.remote({"bad_image": 3}))
        ray.get(curation_counter("curation-pg-test").set.remote(0, "shard-0", {"en": 4}, {"en": 1}))

    pg = placement_group([{"CPU": 0.01}])
    ray.get(pg.ready(), timeout=60)
    ray.get(make_counters.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        pg, placement_group_capture_child_tasks=True)).remote(), timeout=120)
    remove_placement_group(pg)
    time.sleep(1.0)  # Ray kills what was placed in the removed group
    assert ray.get(skip_counter("skips-pg-test").get.remote(), timeout=60) == {"bad_image": 3}
    assert ray.get(curation_counter("curation-pg-test").share.remote(0), timeout=60) == {"en": 0.25}
