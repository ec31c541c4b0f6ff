"""Analytic FLOPs and parameter counts against FlopCounterMode, the real modules, and open_clip's profile."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from clipscale.models import CLIP, MODELS, STANDARD_MODELS, get_spec
from clipscale.models.flops import (flops_table, format_flops_table, forward_flops, image_tokens_at,
                                    param_counts, train_flops_per_sample)

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
BATCH = 1


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one intra-op thread (see conftest.one_thread)."""


def _measure(model, image_size, text_tokens, keep=None):
    """FlopCounterMode totals of one forward and of its backward over a batch. The math SDPA backend is
    forced because FlopCounterMode has no formula for the fused CPU attention kernel (it would count
    attention as 0); math runs it as bmm."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, image_size, image_size, generator=g)
    tokens = torch.randint(1, 100, (BATCH, text_tokens), generator=g)
    patch_keep = None
    if keep is not None:
        patches = image_tokens_at(model.spec, image_size)
        patch_keep = torch.stack([torch.randperm(patches, generator=g)[:keep] for _ in range(BATCH)])
    forward, backward = FlopCounterMode(display=False), FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH):
        with forward:
            out = model(images, tokens, patch_keep=patch_keep)
        with backward:
            (out["image_features"].sum() + out["text_features"].sum()).backward()
    model.zero_grad(set_to_none=True)
    return forward.get_total_flops(), backward.get_total_flops()


def _check(model, image_size, text_tokens, keep=None):
    spec = model.spec
    patches = image_tokens_at(spec, image_size)
    image_tokens = patches if keep is None else keep
    analytic_forward = BATCH * forward_flops(spec, image_tokens, text_tokens, embedded_patches=patches)["total"]
    analytic_train = BATCH * train_flops_per_sample(spec, image_tokens, text_tokens, embedded_patches=patches)
    measured_forward, measured_backward = _measure(model, image_size, text_tokens, keep)
    measured_train = measured_forward + measured_backward
    assert measured_forward > 0 and measured_backward > 0
    assert analytic_forward == pytest.approx(measured_forward, rel=0.05)
    assert analytic_train == pytest.approx(measured_train, rel=0.05)
    # every matmul is counted, so the forward count is exact; training is 3x forward minus the patch
    # embedding's input gradient, which autograd skips
    assert analytic_forward == measured_forward
    patch_embed = BATCH * 2 * patches * 3 * spec.image.patch_size ** 2 * spec.image.width
    assert analytic_train - measured_train == patch_embed


@pytest.mark.parametrize("image_size,text_tokens,keep", [(64, 16, None), (96, 32, 20)])
def test_tiny_flops_match_flop_counter(image_size, text_tokens, keep):
    torch.manual_seed(0)
    _check(CLIP(get_spec("tiny")), image_size, text_tokens, keep)


@pytest.fixture(scope="module")
def vit_b_32():
    torch.manual_seed(0)
    return CLIP(get_spec("ViT-B-32"))


@pytest.mark.parametrize("image_size,text_tokens,keep", [(224, 77, None), (128, 8, 12)])
def test_vit_b_32_flops_match_flop_counter(vit_b_32, image_size, text_tokens, keep):
    _check(vit_b_32, image_size, text_tokens, keep)


@pytest.mark.parametrize("name", list(MODELS))
def test_analytic_param_counts_equal_the_modules(name):
    for spec in (get_spec(name), get_spec(name, vocab_size=1000, context_length=16, image_mlp_ratio=3.0)):
        with torch.device("meta"):
            model = CLIP(spec)
        counts = param_counts(spec)
        assert counts["image"] == sum(p.numel() for p in model.visual.parameters())
        assert counts["text"] == sum(p.numel() for p in model.text.parameters())
        assert counts["total"] == sum(p.numel() for p in model.parameters())


def test_forward_flops_agree_with_open_clip_profile():
    """open_clip's profile counts 2 x MACs of the matmuls too: it agrees to well under 1% (measured
    0.03% at worst) on all 8 standard sizes at 224px and 77 text tokens."""
    reference = pd.read_csv(REFERENCE / "openclip_model_profile.csv").set_index("model")
    for row in flops_table(STANDARD_MODELS):
        published = reference.loc[row["model"]]
        assert row["image_gflops"] == pytest.approx(published["image_gflops"], rel=0.01)
        assert row["text_gflops"] == pytest.approx(published["text_gflops"], rel=0.01)
        assert row["forward_gflops"] == pytest.approx(published["gflops"], rel=0.01)
        assert row["params_m"] == pytest.approx(published["mparams"], rel=0.02)


def test_flops_scale_with_tokens():
    spec = get_spec("ViT-L-14")
    full = forward_flops(spec, 256, 77)
    reduced = forward_flops(spec, 36, 8)  # CLIPA's 84px / 8-token pretraining point
    assert full["total"] == full["image"] + full["text"]
    # 257 vs 37 tokens with the class token: the projections scale linearly, attention quadratically
    assert 257 / 37 < full["image"] / reduced["image"] < (257 / 37) ** 2
    assert full["text"] / reduced["text"] > 77 / 8
    assert train_flops_per_sample(spec, 36, 8) == 3 * reduced["total"]


def test_flops_table_options_and_printer():
    rows = flops_table(["tiny", "ViT-B-16"], image_size=112, text_tokens=16, image_tokens=20)
    assert [r["image_tokens"] for r in rows] == [20, 20]
    assert [r["text_tokens"] for r in rows] == [16, 16]
    # masking keeps 20 tokens but the convolution still embeds all 49 patches of 112px
    spec = get_spec("ViT-B-16")
    assert rows[1]["forward_gflops"] * 1e9 == pytest.approx(
        forward_flops(spec, 20, 16, embedded_patches=49)["total"])
    native = flops_table(["tiny"], image_size=None, text_tokens=77)[0]
    assert (native["image_size"], native["image_tokens"], native["text_tokens"]) == (64, 64, 32)
    text = format_flops_table(rows)
    assert "ViT-B-16" in text and "train GF" in text and len(text.splitlines()) == 4
    with pytest.raises(ValueError, match="image_tokens"):
        flops_table(["tiny"], image_size=64, image_tokens=65)


def _cli(argv):
    import argparse

    from clipscale.cli import flops as cli_flops

    parser = argparse.ArgumentParser()
    cli_flops.register(parser.add_subparsers(dest="verb"))
    args = parser.parse_args(["flops", *argv])
    return args.func(args)


def test_cli_prints_the_table(capsys):
    assert _cli(["--models", "tiny", "ViT-B-32", "--image-size", "128", "--text-tokens", "16"]) == 0
    out = capsys.readouterr().out
    expected = flops_table(["ViT-B-32"], image_size=128, text_tokens=16)[0]
    line = next(line for line in out.splitlines() if line.startswith("ViT-B-32"))
    assert f"{expected['train_gflops']:.3f}" in line.split()
    assert "tiny" in out


def test_cli_reports_unknown_model(capsys):
    from clipscale.cli import main

    assert main(["flops", "--models", "ViT-X"]) == 2
    captured = capsys.readouterr()
    assert "known models" in captured.err and captured.out == ""
