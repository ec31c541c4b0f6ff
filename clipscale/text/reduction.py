"""CLIPA text token reduction: cut tokenized captions ``[B, L]`` (pad id 0) to ``K`` tokens.

- ``truncate``: the first K tokens (CLIPA's default and best).
- ``random``: K of the caption's tokens chosen at random, order kept.
- ``block``: a random contiguous span of K tokens.
- ``syntax``: nouns, then adjectives, then verbs (text/syntax.py). Tagging needs the raw
  caption, so the words are chosen in the data stream before tokenization, within K tokens;
  here it is a truncate that only cuts what the tokenizer's word pieces overran.
A caption with at most K tokens is kept whole (and padded).
"""
from __future__ import annotations

import torch

from clipscale.choices import TextReduction

PAD = 0


def _lengths(tokens: torch.Tensor) -> torch.Tensor:
    return (tokens != PAD).sum(dim=1)


def truncate(tokens: torch.Tensor, k: int) -> torch.Tensor:
    return tokens[:, :k].clone()


def _keep_rows(tokens: torch.Tensor, k: int, pick) -> torch.Tensor:
    """Each row shortened to k tokens: a row of at most k real tokens is kept whole (padded);
    a longer one keeps the positions ``pick(n)`` returns (n = its real length)."""
    out = torch.full((tokens.shape[0], k), PAD, dtype=tokens.dtype)
    for i, n in enumerate(_lengths(tokens).tolist()):
        if n <= k:
            out[i, :n] = tokens[i, :n]
        else:
            out[i] = tokens[i, pick(n)]
    return out


def random_keep(tokens: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    return _keep_rows(tokens, k, lambda n: torch.randperm(n, generator=generator)[:k].sort().values)


def block_keep(tokens: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    def block(n: int) -> slice:
        start = int(torch.randint(0, n - k + 1, (1,), generator=generator))
        return slice(start, start + k)
    return _keep_rows(tokens, k, block)


def reduce_text(tokens: torch.Tensor, k: int, method: TextReduction | str,
                generator: torch.Generator) -> torch.Tensor:
    try:
        method = TextReduction(method)
    except ValueError:
        raise ValueError(f"unknown text reduction {method!r}") from None
    if k >= tokens.shape[1]:
        return tokens
    if method in (TextReduction.TRUNCATE, TextReduction.SYNTAX):
        return truncate(tokens, k)
    if method is TextReduction.RANDOM:
        return random_keep(tokens, k, generator)
    return block_keep(tokens, k, generator)
