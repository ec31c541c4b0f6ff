"""Transformer text tower: token + learned position embeddings, causal (or bidirectional) blocks, pooled at
the last non-pad token (or the mean of non-pad tokens), projection. Pad id is 0.

Inputs may be shorter than context_length (CLIPA trains on 8-32 text tokens): the first T position
embeddings are used.
"""

from __future__ import annotations

import torch
from torch import nn

from clipscale.models.registry import TextSpec
from clipscale.models.transformer import Transformer

PAD_ID = 0


class TextTransformer(nn.Module):
    def __init__(self, spec: TextSpec, embed_dim: int):
        super().__init__()
        self.spec = spec
        self.token_embedding = nn.Embedding(spec.vocab_size, spec.width)
        self.positional_embedding = nn.Parameter(torch.empty(spec.context_length, spec.width))
        self.transformer = Transformer(spec.width, spec.layers, spec.heads, spec.mlp_width)
        self.ln_final = nn.LayerNorm(spec.width)
        self.text_projection = nn.Parameter(torch.empty(spec.width, embed_dim))
        self.init_parameters()

    @torch.no_grad()
    def init_parameters(self) -> None:
        # open_clip TextTransformer.init_parameters
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=self.spec.width ** -0.5)
        self.transformer.init_parameters()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, T] int, T <= context_length, pad id 0 after the text. Returns [B, embed_dim]."""
        batch, length = tokens.shape
        if length > self.spec.context_length:
            raise ValueError(f"{length} text tokens exceed context_length {self.spec.context_length}")
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        not_pad = tokens != PAD_ID
        if self.spec.causal:
            # pads follow the text, so under a causal mask no text token ever attends to a pad
            x = self.transformer(x, is_causal=True)
        else:
            # key-padding mask; position 0 always attends so an all-pad row cannot produce NaN
            keys = not_pad.clone()
            keys[:, 0] = True
            x = self.transformer(x, attn_mask=keys[:, None, None, :])
        x = self.ln_final(x)
        if self.spec.pool == "eot":
            positions = torch.arange(length, device=tokens.device)
            last = (positions * not_pad).argmax(dim=1)  # last non-pad token (the EOT token)
            pooled = x[torch.arange(batch, device=x.device), last]
        else:
            weights = not_pad.to(x.dtype).unsqueeze(-1)
            pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1)
        return pooled @ self.text_projection
