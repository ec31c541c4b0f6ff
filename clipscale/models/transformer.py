"""Pre-LN transformer blocks shared by the image and text towers (open_clip's ResidualAttentionBlock)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class Attention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention`` (fused kernels where available)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False):
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        return self.out(y.transpose(1, 2).reshape(batch, tokens, width))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_width: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_width), nn.GELU(), nn.Linear(mlp_width, width))

    def forward(self, x, attn_mask=None, is_causal=False):
        x = x + self.attn(self.ln_1(x), attn_mask=attn_mask, is_causal=is_causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, mlp_width: int):
        super().__init__()
        self.width = width
        self.blocks = nn.ModuleList(Block(width, heads, mlp_width) for _ in range(layers))
        # Activation checkpointing per block (model.grad_checkpointing): only each block's input
        # is kept for backward; the block's inside is recomputed then (one extra block forward).
        self.grad_checkpointing = False

    def forward(self, x, attn_mask=None, is_causal=False):
        for block in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                # Non-reentrant: works with inputs that need no grad and with ZeRO-3's hooks.
                x = checkpoint(block, x, attn_mask=attn_mask, is_causal=is_causal, use_reentrant=False)
            else:
                x = block(x, attn_mask=attn_mask, is_causal=is_causal)
        return x

    @torch.no_grad()
    def init_parameters(self) -> None:
        """open_clip's TextTransformer.init_parameters std scales (originally OpenAI CLIP's).

        Residual-branch outputs are scaled down by sqrt(2 * layers) so the residual stream's variance
        stays O(1) with depth.
        """
        layers = len(self.blocks)
        attn_std = self.width ** -0.5
        proj_std = attn_std * (2 * layers) ** -0.5
        fc_std = (2 * self.width) ** -0.5
        for block in self.blocks:
            nn.init.normal_(block.attn.qkv.weight, std=attn_std)
            nn.init.normal_(block.attn.out.weight, std=proj_std)
            nn.init.normal_(block.mlp[0].weight, std=fc_std)
            nn.init.normal_(block.mlp[2].weight, std=proj_std)
            for linear in (block.attn.qkv, block.attn.out, block.mlp[0], block.mlp[2]):
                nn.init.zeros_(linear.bias)
