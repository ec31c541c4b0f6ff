"""Hostile and odd shards: each kind is read safely (nothing written outside, memory bounded),
counted by kind, or refused naming the shard and the member or column. Real tars, parquet files
and images built by the test; fast."""
from __future__ import annotations

import io
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clipscale.data.images import ImageDecodeError, decode_image
from clipscale.data.shards import MAX_CAPTION_BYTES, ShardError, iter_shard


def png(color=(200, 30, 30), size=(8, 8), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def add(tar: tarfile.TarFile, name: str, data: bytes = b"", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data else None)


def make_tar(path: Path, members) -> Path:
    with tarfile.open(path, "w") as tar:
        add(tar, "good.png", png())
        add(tar, "good.txt", b"a red square")
        for m in members:
            add(tar, *m[:2], **(m[2] if len(m) > 2 else {}))
    return path


def read(path: Path) -> dict:
    return {s.key: s for s in iter_shard(path)}


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/x.txt", "a/../../b.png", "..\\win.png"])
def test_traversal_names_are_not_read_and_counted(tmp_path, name):
    shard = make_tar(tmp_path / "s.tar", [(name, b"evil")])
    before = set(Path("/etc").iterdir())
    samples = read(shard)
    assert samples[name].problems == ["unsafe_member_name"] and samples[name].image is None
    assert samples["good"].text == "a red square" and not samples["good"].problems
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()
    assert set(Path("/etc").iterdir()) == before


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_symlinks_and_hard_links_are_not_followed(tmp_path, kind):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    shard = make_tar(tmp_path / "s.tar", [("link.txt", b"", {"type": kind, "linkname": str(secret)}),
                                          ("link.png", b"", {"type": kind, "linkname": "good.png"})])
    samples = read(shard)
    assert samples["link.txt"].problems == ["link_member"] and samples["link.png"].problems == ["link_member"]
    assert all("do not read me" not in (s.text or "") for s in samples.values())


def test_special_files_are_not_read(tmp_path):
    shard = make_tar(tmp_path / "s.tar", [("fifo.txt", b"", {"type": tarfile.FIFOTYPE}),
                                          ("dev.png", b"", {"type": tarfile.CHRTYPE})])
    samples = read(shard)
    assert samples["fifo.txt"].problems == samples["dev.png"].problems == ["special_member"]


def test_an_oversized_member_is_skipped_without_reading_it(tmp_path, monkeypatch):
    from clipscale.data import shards

    monkeypatch.setattr(shards, "MAX_MEMBER_BYTES", 10_000)  # the real limit is 64 MiB; same code path
    shard = make_tar(tmp_path / "s.tar", [("big.png", b"\0" * 20_000), ("big.txt", b"caption")])
    samples = read(shard)
    assert samples["big.png"].problems == ["oversized_member"]
    assert "no_image" in samples["big"].problems  # its caption alone is a sample without an image


def test_a_one_megabyte_caption_is_cut_and_counted(tmp_path):
    caption = "é spam " * 125_000  # 1 MB, a two-byte character so the cut can fall inside one
    shard = make_tar(tmp_path / "s.tar", [("long.png", png()), ("long.txt", caption.encode())])
    s = read(shard)["long"]
    assert s.problems == ["truncated_caption"]
    assert caption.startswith(s.text) and MAX_CAPTION_BYTES - 2 < len(s.text.encode()) <= MAX_CAPTION_BYTES


def test_a_caption_in_invalid_utf8_is_counted(tmp_path):
    shard = make_tar(tmp_path / "s.tar", [("bad.png", png()), ("bad.txt", b"caf\xe9 \xff\xfe")])
    s = read(shard)["bad"]
    assert s.text is None and s.problems == ["undecodable_caption"]


def test_a_truncated_tar_is_refused_naming_shard_and_member(tmp_path):
    shard = make_tar(tmp_path / "s.tar", [("b.png", png(size=(64, 64)) + b"\0" * 20_000), ("b.txt", b"x")])
    data = shard.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:1536 + 5000])  # inside b.png's data
    with pytest.raises(ShardError, match=r"cut\.tar: not a readable tar: truncated or corrupt after member 'b\.png'"):
        read(cut)


def test_a_parquet_with_wrong_types_is_refused_naming_the_column(tmp_path):
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"key": ["a"], "image": pa.array([7], pa.int64()), "caption": ["x"]}), path)
    with pytest.raises(ShardError, match=r"s\.parquet: column 'image' has type int64"):
        list(iter_shard(path))
    pq.write_table(pa.table({"key": ["a"], "image": [png()], "caption": pa.array([1.5])}), path)
    with pytest.raises(ShardError, match=r"column 'caption' has type double"):
        list(iter_shard(path))


def test_a_parquet_caption_in_invalid_utf8_is_counted(tmp_path):
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"key": ["a", "b"], "image": [png(), png()],
                             "caption": pa.array([b"ok", b"\xff\xfe"], pa.binary())}), path)
    got = {s.key: s for s in iter_shard(path)}
    assert got["a"].text == "ok" and got["b"].problems == ["undecodable_caption"]


# ---- images -----------------------------------------------------------------------------------

def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size in a few bytes: a decompression bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_decoding():
    import tracemalloc

    bomb = png_header_only(40_000, 40_000)  # 1.6 G pixels, 4.8 GB decoded, ~100 bytes stored
    tracemalloc.start()
    with pytest.raises(ImageDecodeError, match="DecompressionBomb"):
        decode_image(bomb, 32)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 << 20


def test_cmyk_jpeg_decodes_to_rgb():
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(buf, format="JPEG", quality=95)  # red
    arr = decode_image(buf.getvalue(), 8)
    assert arr.shape == (8, 8, 3) and arr[..., 0].min() > 200 and arr[..., 1:].max() < 60


def test_16bit_grey_png_is_scaled_not_clipped():
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")
    arr = decode_image(buf.getvalue(), 8)
    assert np.all(np.abs(arr.astype(int) - 128) <= 1)  # mid grey, not white


def test_palette_with_alpha_is_composited_on_white():
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 255] + [0, 0, 0] * 255)
    im.info["transparency"] = 0
    buf = io.BytesIO()
    im.save(buf, format="PNG", transparency=0)
    arr = decode_image(buf.getvalue(), 8)
    assert np.all(arr == 255)  # fully transparent blue -> white background


def test_exif_rotated_photo_is_turned_upright():
    rgb = np.zeros((8, 16, 3), dtype=np.uint8)
    rgb[:, :8] = (255, 0, 0)  # left half red, right half blue: a landscape image
    rgb[:, 8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=100, exif=exif.tobytes())
    arr = decode_image(buf.getvalue(), 8)  # displayed: portrait 8 wide, 16 high, centre-cropped
    top, bottom = arr[:2].reshape(-1, 3).mean(0), arr[-2:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60  # red on top after the rotation
    assert bottom[2] > 200 and bottom[0] < 60


def test_the_curation_report_counts_each_kind_once(tmp_path):
    from clipscale.curation.shard_pass import CaptionMatcher, count_shard

    shard = make_tar(tmp_path / "s.tar", [
        ("../up.txt", b"x"), ("/etc/abs.png", b"x"),
        ("l.png", b"", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
        ("long.png", png()), ("long.txt", b"y" * (MAX_CAPTION_BYTES + 1)),
        ("bad.png", png()), ("bad.txt", b"\xff\xfe")])
    result = count_shard(str(shard), CaptionMatcher({"en": ["red"]}), tmp_path / "s.parquet")
    assert result["problems"] == {"unsafe_member_name": 2, "link_member": 1, "truncated_caption": 1,
                                  "undecodable_caption": 1}
