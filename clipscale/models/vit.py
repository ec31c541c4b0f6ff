"""ViT image tower: conv patch embedding, fixed 2-D sin-cos positions, class token, pre-LN blocks.

Positions are fixed 2-D sin-cos (as MAE, FLIP and CLIPA use) rather than open_clip's learned table, so the
same weights run at every resolution: CLIPA trains at 64px and fine-tunes at 224px. Patch tokens can be
subsampled after positions are added (``patch_keep``), which is how random/grid/block masking drop tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from clipscale.models.registry import ImageSpec
from clipscale.models.transformer import Transformer


def sincos_2d_position_embedding(grid_h: int, grid_w: int, width: int, device=None,
                                 dtype=torch.float32) -> torch.Tensor:
    """[grid_h * grid_w, width] row-major: half the channels encode the row, half the column (MAE)."""
    if width % 4:
        raise ValueError(f"sin-cos position embedding needs width divisible by 4, got {width}")
    quarter = width // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid_h, device=device, dtype=torch.float32),
                                torch.arange(grid_w, device=device, dtype=torch.float32), indexing="ij")
    row_angles = rows.reshape(-1, 1) * omega
    col_angles = cols.reshape(-1, 1) * omega
    embedding = torch.cat([row_angles.sin(), row_angles.cos(), col_angles.sin(), col_angles.cos()], dim=1)
    return embedding.to(dtype)


class VisionTransformer(nn.Module):
    def __init__(self, spec: ImageSpec, embed_dim: int):
        super().__init__()
        self.spec = spec
        width = spec.width
        self.conv = nn.Conv2d(3, width, kernel_size=spec.patch_size, stride=spec.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, spec.layers, spec.heads, spec.mlp_width)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.empty(width, embed_dim))
        self.init_parameters()

    @torch.no_grad()
    def init_parameters(self) -> None:
        scale = self.spec.width ** -0.5  # open_clip VisionTransformer
        nn.init.normal_(self.class_embedding, std=scale)
        nn.init.normal_(self.proj, std=scale)
        self.transformer.init_parameters()

    def forward(self, images: torch.Tensor, patch_keep: torch.Tensor | None = None) -> torch.Tensor:
        """images [B, 3, H, W] (H, W multiples of patch_size); patch_keep [B, K] row-major patch indices.

        Returns the projected class token [B, embed_dim] (not normalized).
        """
        patch = self.spec.patch_size
        if images.shape[-2] % patch or images.shape[-1] % patch:
            raise ValueError(f"image size {tuple(images.shape[-2:])} is not a multiple of patch size {patch}")
        x = self.conv(images)  # [B, width, grid_h, grid_w]
        batch, width, grid_h, grid_w = x.shape
        x = x.flatten(2).transpose(1, 2)  # [B, grid_h * grid_w, width]
        x = x + sincos_2d_position_embedding(grid_h, grid_w, width, device=x.device, dtype=x.dtype)
        if patch_keep is not None:
            if patch_keep.dim() != 2 or patch_keep.shape[0] != batch:
                raise ValueError(f"patch_keep must be [B={batch}, K], got {tuple(patch_keep.shape)}")
            x = torch.gather(x, 1, patch_keep.to(x.device).unsqueeze(-1).expand(-1, -1, width))
        # the class token carries no position (MAE's zero position for it)
        cls = self.class_embedding.to(x.dtype).expand(batch, 1, width)
        x = self.ln_pre(torch.cat([cls, x], dim=1))
        x = self.transformer(x)
        return self.ln_post(x[:, 0]) @ self.proj
