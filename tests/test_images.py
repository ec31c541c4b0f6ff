"""Image decoding and normalisation."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from clipscale.data.images import (IMAGE_MEAN, IMAGE_STD, ImageDecodeError, decode_image,
                                   decode_images, to_tensor_batch)


def _encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_decode_jpeg_resizes_to_rgb_square():
    arr = np.zeros((96, 96, 3), np.uint8)
    arr[..., 0] = 200
    out = decode_image(_encode(arr, "JPEG", quality=95), 64)
    assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
    assert abs(int(out[..., 0].mean()) - 200) <= 3 and out[..., 1:].max() <= 8


def test_decode_non_square_centre_crop():
    arr = np.zeros((40, 80, 3), np.uint8)  # left half black, right half white, 2:1
    arr[:, 40:] = 255
    out = decode_image(_encode(arr, "PNG"), 20)
    assert out.shape == (20, 20, 3)
    # the centre crop of a 40x20 resize holds both halves, split at column 10
    assert out[:, :8].max() < 30 and out[:, 12:].min() > 225


def test_decode_png_alpha_on_white_and_grey():
    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent
    assert decode_image(_encode(rgba, "PNG"), 8).min() == 255
    grey = np.full((8, 8), 77, np.uint8)
    assert (decode_image(_encode(grey, "PNG"), 8) == 77).all()


@pytest.mark.parametrize("data", [
    b"",
    b"definitely not an image",
    b"\xff\xd8\xff\xe0" + b"\x00" * 30,  # a JPEG header and nothing usable
])
def test_corrupt_bytes_raise_clear_error(data):
    with pytest.raises(ImageDecodeError):
        decode_image(data, 32)


def test_truncated_jpeg_raises():
    rng = np.random.default_rng(0)
    full = _encode(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "JPEG")
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        decode_image(full[: len(full) // 2], 32)


def test_decode_images_skips_and_counts():
    good = _encode(np.full((16, 16, 3), 9, np.uint8), "PNG")
    arr, kept, bad = decode_images([good, b"junk", None, good], 16)
    assert arr.shape == (2, 16, 16, 3) and kept == [0, 3] and bad == 2


def test_to_tensor_batch_exact_values():
    x = np.zeros((2, 4, 5, 3), np.uint8)
    x[1, 2, 3] = (255, 0, 128)
    t = to_tensor_batch(x)
    assert t.dtype == torch.float32 and tuple(t.shape) == (2, 3, 4, 5) and t.is_contiguous()
    expect = [(1.0 - IMAGE_MEAN[0]) / IMAGE_STD[0], (0.0 - IMAGE_MEAN[1]) / IMAGE_STD[1],
              (128 / 255 - IMAGE_MEAN[2]) / IMAGE_STD[2]]
    assert t[1, :, 2, 3].tolist() == pytest.approx(expect, rel=1e-6)
    assert t[0, 0, 0, 0].item() == pytest.approx(-IMAGE_MEAN[0] / IMAGE_STD[0], rel=1e-6)
    assert torch.equal(to_tensor_batch(torch.from_numpy(x)), t)
    with pytest.raises(ValueError, match="uint8"):
        to_tensor_batch(x.astype(np.float32))
