"""CLIPA image-token masks as index generators: which patch tokens of a grid_h x grid_w grid to keep.

Each returns a sorted LongTensor of ``keep`` row-major patch indices (sorted so the kept tokens keep their
raster order), or ``[batch_size, keep]`` with one independent draw per sample; stack per-sample draws into
the ``patch_keep`` argument of ``CLIP.encode_image``.
"""

from __future__ import annotations

import math

import torch


def _check_keep(grid_h: int, grid_w: int, keep: int) -> None:
    if not 0 < keep <= grid_h * grid_w:
        raise ValueError(f"keep must be in 1..{grid_h * grid_w} for a {grid_h}x{grid_w} grid, got {keep}")


def _batched(draw, batch_size: int | None) -> torch.Tensor:
    if batch_size is None:
        return draw()
    return torch.stack([draw() for _ in range(batch_size)])


def random_mask(grid_h: int, grid_w: int, keep: int, generator: torch.Generator | None = None,
                batch_size: int | None = None) -> torch.Tensor:
    """A uniformly random subset of ``keep`` patches."""
    _check_keep(grid_h, grid_w, keep)
    return _batched(lambda: torch.randperm(grid_h * grid_w, generator=generator)[:keep].sort().values,
                    batch_size)


def grid_strides(grid_h: int, grid_w: int) -> dict[int, int]:
    """keep -> stride for the grid masks a grid allows: one patch per stride x stride cell."""
    return {(grid_h // s) * (grid_w // s): s for s in range(1, min(grid_h, grid_w) + 1)
            if grid_h % s == 0 and grid_w % s == 0}


def grid_mask(grid_h: int, grid_w: int, keep: int, generator: torch.Generator | None = None,
              batch_size: int | None = None) -> torch.Tensor:
    """One patch per stride x stride cell at a random offset shared by all cells (CLIPA's grid masking
    keeps one of every 2x2: keep = grid_h * grid_w / 4). ``keep`` must be (grid_h/s) * (grid_w/s) for an
    s dividing both sides."""
    _check_keep(grid_h, grid_w, keep)
    strides = grid_strides(grid_h, grid_w)
    if keep not in strides:
        raise ValueError(f"grid mask on a {grid_h}x{grid_w} grid can keep {sorted(strides)} patches, not {keep}")
    stride = strides[keep]
    rows = torch.arange(0, grid_h, stride)
    cols = torch.arange(0, grid_w, stride)

    def draw():
        dy, dx = torch.randint(stride, (2,), generator=generator).tolist()
        return ((rows + dy)[:, None] * grid_w + (cols + dx)[None, :]).reshape(-1)

    return _batched(draw, batch_size)


def block_shape(grid_h: int, grid_w: int, keep: int) -> tuple[int, int]:
    """The most nearly square block_h x block_w == keep that fits the grid."""
    _check_keep(grid_h, grid_w, keep)
    for block_h in sorted(range(1, keep + 1), key=lambda h: abs(h - math.sqrt(keep))):
        if keep % block_h == 0 and block_h <= grid_h and keep // block_h <= grid_w:
            return block_h, keep // block_h
    raise ValueError(f"no rectangle of {keep} patches fits a {grid_h}x{grid_w} grid")


def block_mask(grid_h: int, grid_w: int, keep: int, generator: torch.Generator | None = None,
               batch_size: int | None = None) -> torch.Tensor:
    """One contiguous rectangle of ``keep`` patches at a random position."""
    block_h, block_w = block_shape(grid_h, grid_w, keep)
    rows = torch.arange(block_h)
    cols = torch.arange(block_w)

    def draw():
        top = int(torch.randint(grid_h - block_h + 1, (1,), generator=generator))
        left = int(torch.randint(grid_w - block_w + 1, (1,), generator=generator))
        return ((rows + top)[:, None] * grid_w + (cols + left)[None, :]).reshape(-1)

    return _batched(draw, batch_size)
