"""Image decoding and normalisation for training and evaluation.

``decode_image`` turns stored bytes into a fixed-size RGB array and raises ``ImageDecodeError``
(and nothing else) on bad bytes, so a pipeline can skip and count corrupt samples.
``to_tensor_batch`` turns a uint8 NHWC batch into the normalised float NCHW tensor the image
tower takes.
"""
from __future__ import annotations

import io
import warnings

import numpy as np

from clipscale.errors import ClipscaleError

# OpenAI CLIP's normalisation (also open_clip's default), so checkpoints stay comparable.
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageDecodeError(ClipscaleError, ValueError):
    """Bytes that are not a decodable image (corrupt, truncated, unknown format, too large)."""


EXIF_ORIENTATION = 0x0112


def upright_8bit(im):
    """Odd images made ordinary: a photo's EXIF orientation applied (a phone's portrait shot is
    stored sideways), and 16- or 32-bit greyscale (``I;16``, ``I``, ``F``) scaled to 8 bits
    instead of clipped to white. CMYK, palette (with alpha) and the rest convert in the caller."""
    from PIL import Image, ImageOps

    if im.getexif().get(EXIF_ORIENTATION, 1) != 1:
        im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I") or im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        peak = arr.max(initial=0)
        # the range the values use: 0..1 (float), 0..255 (8-bit values in a wide mode), else 16-bit
        top = 1.0 if im.mode == "F" and peak <= 1.0 else 255.0 if peak <= 255 else 65535.0
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    return im


def decode_image(data: bytes, size: int) -> np.ndarray:
    """Bytes -> uint8 array [size, size, 3], RGB. The shorter side is resized to ``size`` and the
    centre cropped (CLIP's preprocessing; a no-op crop for square images). Transparent pixels are
    composited on white, so an RGBA PNG does not turn black where it is transparent."""
    from PIL import Image

    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if not data:
        raise ImageDecodeError("empty image bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            # JPEG draft decodes at a reduced scale directly: much cheaper for big images
            im.draft("RGB", (size, size))
            im.load()  # PIL is lazy: force the decode here, where errors are caught
            im = upright_8bit(im)
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            if (nw, nh) != (w, h):
                im = im.resize((nw, nh), Image.Resampling.BICUBIC)
            left, top = (nw - size) // 2, (nh - size) // 2
            if (nw, nh) != (size, size):
                im = im.crop((left, top, left + size, top + size))
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, EOFError) as e:
        # PIL reports bad data as OSError (truncated), UnidentifiedImageError (an OSError),
        # SyntaxError (bad PNG chunks) or ValueError, depending on the codec
        raise ImageDecodeError(f"cannot decode image ({type(e).__name__}: {e})") from e
    if arr.shape != (size, size, 3):
        raise ImageDecodeError(f"decoded to shape {arr.shape}, expected {(size, size, 3)}")
    return arr


def decode_images(blobs: list[bytes | None], size: int) -> tuple[np.ndarray, list[int], int]:
    """Decode a batch, skipping bad items. Returns (uint8 [N_ok, size, size, 3], indices of the
    decoded items in ``blobs``, number skipped) so the caller can drop the matching captions and
    count the failures."""
    arrays, kept = [], []
    for i, b in enumerate(blobs):
        if b is None:
            continue
        try:
            arrays.append(decode_image(b, size))
            kept.append(i)
        except ImageDecodeError:
            continue
    out = np.stack(arrays) if arrays else np.zeros((0, size, size, 3), dtype=np.uint8)
    return out, kept, len(blobs) - len(kept)


def to_tensor_batch(images):
    """uint8 [N, H, W, 3] (numpy or torch) -> float32 [N, 3, H, W], scaled to [0, 1] then
    normalised with IMAGE_MEAN / IMAGE_STD."""
    import torch

    x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 [N, H, W, 3], got {x.dtype} {tuple(x.shape)}")
    mean = torch.tensor(IMAGE_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, dtype=torch.float32).view(1, 3, 1, 1)
    x = x.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    return ((x - mean) / std).contiguous()
