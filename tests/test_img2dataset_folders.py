"""img2dataset output folders read as they are: tars with their ``NNNNN.parquet`` / ``NNNNN_stats.json``
siblings, and parquet output mode with the image in a ``jpg``/``png``/``webp`` column.

The folders are written by img2dataset's own writer classes (``img2dataset.writer``,
``img2dataset.logger.write_stats``) on local images: no network. scripts/setup.sh installs img2dataset
beside the environment without its dependencies (its pins conflict with the project's), and its
package ``__init__`` imports the downloader's dependencies, so its two modules are loaded by path.
"""
from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image

from clipscale.data.shards import drop_tar_metadata, iter_shard, list_shards

EXTRAS = Path(__file__).resolve().parents[1] / ".venv" / "extras" / "img2dataset"


def _img2dataset_module(name: str):
    path = EXTRAS / "img2dataset" / f"{name}.py"
    if not path.is_file():
        pytest.fail(f"{path} missing: run scripts/setup.sh (it installs img2dataset there)")
    spec = importlib.util.spec_from_file_location(f"img2dataset_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (10 * i % 256, 80, 200)).save(buf, format="JPEG")
    return buf.getvalue()


# img2dataset's downloader schema: the input columns (url, caption) plus these
def _schema() -> pa.Schema:
    return pa.schema([("url", pa.string()), ("caption", pa.string()), ("key", pa.string()),
                      ("status", pa.string()), ("error_message", pa.string()), ("width", pa.int32()),
                      ("height", pa.int32()), ("original_width", pa.int32()), ("original_height", pa.int32())])


def _write(folder: Path, writer_cls, shards: int = 2, per_shard: int = 5, fmt: str = "jpg") -> dict:
    """Samples as img2dataset's downloader hands them to its writers; every fifth failed to download."""
    logger = _img2dataset_module("logger")
    expected = {}
    for shard in range(shards):
        writer = writer_cls(shard, str(folder), True, 5, _schema(), fmt)
        status = logger.CappedCounter()
        for j in range(per_shard):
            i = shard * per_shard + j
            key = f"{shard:05d}{j:04d}"
            ok = j != 4
            caption = f"a photo of thing {i}"
            meta = {"url": f"http://example.invalid/{i}.jpg", "caption": caption, "key": key,
                    "status": "success" if ok else "failed_to_download",
                    "error_message": None if ok else "HTTP 404", "width": 24 if ok else None,
                    "height": 16 if ok else None, "original_width": 24 if ok else None,
                    "original_height": 16 if ok else None}
            image = _jpeg(i) if ok else None
            writer.write(image, key, caption if ok else None, meta)
            status.increment(meta["status"])
            if ok:
                expected[key] = (caption, image)
        writer.close()
        logger.write_stats(str(folder), shard, per_shard, per_shard - 1, 1, 0, 0.0, 1.0, status, 5)
    return expected


def test_tar_folder_lists_only_the_tars_and_reads_every_sample(tmp_path):
    writer = _img2dataset_module("writer")
    expected = _write(tmp_path, writer.WebDatasetSampleWriter)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["00000.parquet", "00000.tar", "00000_stats.json",
                     "00001.parquet", "00001.tar", "00001_stats.json"]
    shards = list_shards(tmp_path)
    assert [Path(s).name for s in shards] == ["00000.tar", "00001.tar"]
    assert [Path(s).name for s in list_shards(str(tmp_path / "0*[0-9].*"))] == ["00000.tar", "00001.tar"]
    got = {s.key: s for shard in shards for s in iter_shard(shard)}
    assert set(got) == set(expected)  # failed downloads are in the metadata parquet only
    for key, (caption, image) in expected.items():
        assert got[key].text == caption and got[key].image == image and got[key].image_ext == "jpg"
        assert got[key].meta["url"].endswith(".jpg") and got[key].meta["status"] == "success"
        assert not got[key].problems


def test_parquet_mode_reads_the_image_column_named_after_the_format(tmp_path):
    writer = _img2dataset_module("writer")
    expected = _write(tmp_path, writer.ParquetSampleWriter, fmt="webp")
    shards = list_shards(tmp_path)
    assert [Path(s).name for s in shards] == ["00000.parquet", "00001.parquet"]
    samples = [s for shard in shards for s in iter_shard(shard)]
    assert len(samples) == 10
    good = {s.key: s for s in samples if not s.problems}
    assert set(good) == set(expected)
    for key, (caption, image) in expected.items():
        assert good[key].text == caption and good[key].image == image and good[key].image_ext == "webp"
        assert good[key].meta["status"] == "success" and good[key].meta["width"] == 24
    failed = [s for s in samples if s.problems]
    assert len(failed) == 2 and all("no_image" in s.problems for s in failed)


def test_drop_tar_metadata_keeps_parquet_shards_without_a_tar():
    paths = ["/d/00000.tar", "/d/00000.parquet", "/d/00001.parquet", "/e/00000.parquet"]
    assert drop_tar_metadata(paths) == ["/d/00000.tar", "/d/00001.parquet", "/e/00000.parquet"]
