"""Render an emoji-world scene (emoji placed on a background) to encoded image bytes.

A scene is fully decided before rendering (``Scene``), so rendering is a pure function of the
scene: the same scene always gives the same bytes, whichever process renders it.
"""
from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from clipscale.data.emoji_text import COLORS


@dataclass(frozen=True)
class Placement:
    png: str   # twemoji PNG path
    x: int
    y: int
    px: int    # side of the square the emoji is scaled to


@dataclass(frozen=True)
class Scene:
    size: int
    color: str                         # key of COLORS
    style: str                         # "solid" | "gradient" | "noisy"
    jitter: tuple[int, int, int]       # per-channel shift of the named colour
    texture_seed: int                  # seeds the "noisy" texture
    placements: tuple[Placement, ...]


def draw_placements(rng: np.random.Generator, pngs: list[str], size: int) -> list[Placement]:
    """Scale and position for each emoji. One emoji fills 45-90% of the side, several 30-65%.
    Positions are re-drawn (up to 8 times) while a box covers more than a quarter of a box
    already placed, so that every emoji stays recognisable."""
    lo, hi = (0.45, 0.9) if len(pngs) == 1 else (0.30, 0.65)
    boxes: list[Placement] = []
    for png in pngs:
        px = max(8, int(round(rng.uniform(lo, hi) * size)))
        for _ in range(8):
            x = int(rng.integers(0, size - px + 1))
            y = int(rng.integers(0, size - px + 1))
            if all(_overlap(x, y, px, b) <= 0.25 * min(px, b.px) ** 2 for b in boxes):
                break
        boxes.append(Placement(png, x, y, px))
    return boxes


def _overlap(x: int, y: int, px: int, b: Placement) -> int:
    w = min(x + px, b.x + b.px) - max(x, b.x)
    h = min(y + px, b.y + b.px) - max(y, b.y)
    return max(w, 0) * max(h, 0)


def draw_background(rng: np.random.Generator) -> tuple[str, str, tuple[int, int, int], int]:
    """(colour name, style, jitter, texture seed) for one scene."""
    color = list(COLORS)[int(rng.integers(len(COLORS)))]
    style = ("solid", "gradient", "noisy")[int(rng.integers(3))]
    jitter = tuple(int(v) for v in rng.integers(-20, 21, size=3))
    return color, style, jitter, int(rng.integers(2**31))


def background_array(scene: Scene) -> np.ndarray:
    base = np.clip(np.array(COLORS[scene.color][0], dtype=np.float32) + scene.jitter, 0, 255)
    s = scene.size
    img = np.broadcast_to(base, (s, s, 3)).astype(np.float32)
    if scene.style == "gradient":
        # Top is the named colour; fade towards a lighter or darker shade so the word still fits.
        target = 255.0 if base.mean() < 128 else 0.0
        t = np.linspace(0.0, 0.45, s, dtype=np.float32)[:, None, None]
        img = img * (1 - t) + target * t
    elif scene.style == "noisy":
        noise = np.random.default_rng(scene.texture_seed).normal(0, 12, size=(s, s, 1))
        img = img + noise.astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1024)
def _emoji_rgba(png: str) -> Image.Image:
    with Image.open(png) as im:
        return im.convert("RGBA")


@functools.lru_cache(maxsize=8192)
def _emoji_scaled(png: str, px: int) -> Image.Image:
    return _emoji_rgba(png).resize((px, px), Image.Resampling.LANCZOS)


def render(scene: Scene) -> Image.Image:
    canvas = Image.fromarray(background_array(scene), "RGB")
    for p in scene.placements:
        em = _emoji_scaled(p.png, p.px)
        canvas.paste(em, (p.x, p.y), em)
    return canvas


def encode(img: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG", optimize=False)
    else:
        img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
