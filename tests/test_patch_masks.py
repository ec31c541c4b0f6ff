"""Patch-mask index generators: shapes, counts, uniqueness, geometry, determinism under a seed."""

import pytest
import torch

from clipscale.models import CLIP, get_spec
from clipscale.models.patch_masks import block_mask, block_shape, grid_mask, grid_strides, random_mask


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one intra-op thread (see conftest.one_thread)."""


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _check_indices(idx, grid_h, grid_w, keep):
    assert idx.dtype == torch.long
    assert idx.shape == (keep,)
    assert idx.unique().numel() == keep
    assert idx.min() >= 0 and idx.max() < grid_h * grid_w
    assert torch.equal(idx, idx.sort().values)


@pytest.mark.parametrize("keep", [1, 7, 32, 64])
def test_random_mask(keep):
    idx = random_mask(8, 8, keep, _gen())
    _check_indices(idx, 8, 8, keep)
    assert torch.equal(idx, random_mask(8, 8, keep, _gen()))  # seeded: reproducible


def test_random_mask_covers_the_grid():
    g = _gen()
    seen = torch.cat([random_mask(8, 8, 4, g) for _ in range(200)]).unique()
    assert seen.numel() == 64


def test_grid_mask_one_per_cell():
    g = _gen(1)
    for _ in range(10):
        idx = grid_mask(8, 6, 12, g)
        _check_indices(idx, 8, 6, 12)
        rows, cols = idx // 6, idx % 6
        cells = (rows // 2) * 3 + cols // 2
        assert sorted(cells.tolist()) == list(range(12))  # exactly one patch in each 2x2 cell
        # the same offset in every cell
        assert (rows % 2).unique().numel() == 1 and (cols % 2).unique().numel() == 1
    first = [int(grid_mask(8, 8, 16, g)[0]) for _ in range(50)]
    assert len({(i // 8 % 2, i % 2) for i in first}) == 4  # all four offsets of a 2x2 cell occur


def test_grid_mask_rejects_impossible_counts():
    assert grid_strides(14, 14) == {196: 1, 49: 2, 4: 7, 1: 14}
    with pytest.raises(ValueError, match="can keep"):
        grid_mask(14, 14, 50, _gen())


def test_block_mask_is_contiguous_rectangle():
    g = _gen(2)
    assert block_shape(14, 14, 49) == (7, 7)
    assert block_shape(8, 8, 12) in {(3, 4), (4, 3)}
    for _ in range(20):
        idx = block_mask(14, 14, 49, g)
        _check_indices(idx, 14, 14, 49)
        rows, cols = idx // 14, idx % 14
        assert rows.max() - rows.min() == 6 and cols.max() - cols.min() == 6
    positions = {int(block_mask(14, 14, 49, g)[0]) for _ in range(30)}
    assert len(positions) > 1


def test_block_mask_rejects_unfittable():
    with pytest.raises(ValueError, match="no rectangle"):
        block_mask(4, 4, 13, _gen())  # 13 is prime and wider than the grid
    with pytest.raises(ValueError, match="keep must be"):
        random_mask(4, 4, 17, _gen())


@pytest.mark.parametrize("mask", [random_mask, grid_mask, block_mask])
def test_batched_masks_feed_the_image_tower(mask):
    keep = 16
    idx = mask(8, 8, keep, _gen(3), batch_size=3)
    assert idx.shape == (3, keep)
    model = CLIP(get_spec("tiny-s")).eval()
    assert model.encode_image(torch.randn(3, 3, 64, 64), patch_keep=idx).shape == (3, 64)
