"""Activation checkpointing (model.grad_checkpointing) changes memory, not numbers; train.compile
is refused on CPU (benchmarks/compile_cpu.py measured it there)."""
from __future__ import annotations

import pytest
import torch

from clipscale.config import ConfigError, build_run_config
from clipscale.models import CLIP, get_spec
from clipscale.train.step import compute_loss


def _grads(checkpointing: bool, loss: str, patch_keep=None):
    torch.manual_seed(0)
    model = CLIP(get_spec("tiny-s"), loss=loss)
    model.set_grad_checkpointing(checkpointing)
    g = torch.Generator().manual_seed(1)
    images = torch.randn(6, 3, 64, 64, generator=g)
    tokens = torch.randint(1, 4096, (6, 32), generator=g)
    value = compute_loss(model(images, tokens, patch_keep=patch_keep), loss)
    value.backward()
    return value.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("loss", ["softmax", "sigmoid"])
def test_checkpointing_leaves_loss_and_every_gradient_unchanged(loss):
    keep = torch.stack([torch.randperm(64, generator=torch.Generator().manual_seed(i))[:16]
                        for i in range(6)])
    for patch_keep in (None, keep):
        plain_loss, plain = _grads(False, loss, patch_keep)
        ckpt_loss, ckpt = _grads(True, loss, patch_keep)
        assert ckpt_loss == plain_loss
        assert plain.keys() == ckpt.keys()
        for name in plain:
            torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def _saved_for_backward(checkpointing: bool) -> int:
    """Elements autograd keeps for backward during one forward (activation memory)."""
    torch.manual_seed(0)
    model = CLIP(get_spec("tiny-s"))
    model.set_grad_checkpointing(checkpointing)
    images, tokens = torch.randn(4, 3, 64, 64), torch.randint(1, 4096, (4, 32))
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        value = compute_loss(model(images, tokens), "softmax")
    value.backward()
    return sum(saved)


def test_checkpointing_keeps_less_for_backward():
    """Evidence that checkpointing is really on: the blocks' insides are not kept."""
    plain, ckpt = _saved_for_backward(False), _saved_for_backward(True)
    assert ckpt < 0.5 * plain, (ckpt, plain)


def test_compile_is_refused_on_cpu_at_config_time():
    base = {"data": {"train_shards": "x"}}
    with pytest.raises(ConfigError, match="train.compile.*GPU"):
        build_run_config({**base, "train": {"compile": True, "use_gpu": False}})
    assert build_run_config({**base, "train": {"compile": True, "use_gpu": True}}).train.compile
