"""Models: shapes, every resolution, patch_keep, text pooling, registry, parameter counts vs open_clip."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from clipscale.models import CLIP, MODELS, STANDARD_MODELS, TINY_MODELS, get_spec
from clipscale.models.vit import sincos_2d_position_embedding

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one intra-op thread (see conftest.one_thread)."""


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return CLIP(get_spec("tiny")).eval()


def _tokens(batch, length, vocab=4096, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab, (batch, length), generator=g)


@pytest.mark.parametrize("size", [64, 96, 224])
def test_every_resolution(tiny, size):
    out = tiny(torch.randn(2, 3, size, size), _tokens(2, 16))
    assert out["image_features"].shape == (2, 128)
    assert out["text_features"].shape == (2, 128)
    for key in ("image_features", "text_features"):
        assert torch.allclose(out[key].norm(dim=-1), torch.ones(2), atol=1e-5)
    assert out["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-5)
    assert out["logit_bias"] is None


def test_non_square_and_bad_size(tiny):
    assert tiny.encode_image(torch.randn(1, 3, 64, 96)).shape == (1, 128)
    with pytest.raises(ValueError, match="multiple of patch size"):
        tiny.encode_image(torch.randn(1, 3, 60, 64))


def test_sigmoid_init():
    model = CLIP(get_spec("tiny-s"), loss="sigmoid")
    out = model(torch.randn(1, 3, 64, 64), _tokens(1, 8))
    assert out["logit_scale"].item() == pytest.approx(10.0, rel=1e-5)
    assert out["logit_bias"].item() == -10.0


def test_patch_keep_selects_tokens(tiny):
    images = torch.randn(2, 3, 64, 64)
    all_patches = torch.arange(64).expand(2, 64)
    full = tiny.encode_image(images)
    assert torch.allclose(tiny.encode_image(images, patch_keep=all_patches), full, atol=1e-5)
    # attention is permutation-equivariant over patch tokens and positions are added before selection,
    # so a shuffled keep list gives the same features
    shuffled = torch.stack([torch.randperm(64), torch.randperm(64)])
    assert torch.allclose(tiny.encode_image(images, patch_keep=shuffled), full, atol=1e-5)
    subset = torch.stack([torch.arange(0, 64, 4), torch.arange(1, 64, 4)])
    reduced = tiny.encode_image(images, patch_keep=subset)
    assert reduced.shape == (2, 128)
    assert not torch.allclose(reduced, full, atol=1e-3)
    # sample 0 with subset 0 depends only on its own row
    alone = tiny.encode_image(images[:1], patch_keep=subset[:1])
    assert torch.allclose(alone, reduced[:1], atol=1e-5)


def test_position_embedding_distinguishes_positions():
    pos = sincos_2d_position_embedding(4, 6, 32)
    assert pos.shape == (24, 32)
    assert torch.cdist(pos, pos).add(torch.eye(24)).min() > 0.1


def test_text_shorter_than_context_and_eot_pooling(tiny):
    tokens = _tokens(2, 8)
    padded = torch.cat([tokens, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    # causal + pooled at the last non-pad token: trailing pads change nothing
    assert torch.allclose(tiny.encode_text(tokens), tiny.encode_text(padded), atol=1e-5)
    # the pooled token sees the tokens before it
    changed = padded.clone()
    changed[:, 0] = 7
    assert not torch.allclose(tiny.encode_text(changed), tiny.encode_text(padded), atol=1e-4)
    with pytest.raises(ValueError, match="context_length"):
        tiny.encode_text(_tokens(1, 33))


@pytest.mark.parametrize("pool", ["eot", "mean"])
def test_bidirectional_text_ignores_pads(pool):
    torch.manual_seed(0)
    model = CLIP(get_spec("tiny-s", causal=False, pool=pool)).eval()
    tokens = _tokens(2, 6)
    padded = torch.cat([tokens, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    assert torch.allclose(model.encode_text(tokens), model.encode_text(padded), atol=1e-5)
    # the same weights under a causal mask give different features: the mask really changes attention
    causal = CLIP(get_spec("tiny-s", causal=True, pool=pool)).eval()
    causal.load_state_dict(model.state_dict())
    assert not torch.allclose(causal.encode_text(tokens), model.encode_text(tokens), atol=1e-4)
    assert torch.allclose(causal.encode_text(tokens), causal.encode_text(padded), atol=1e-5)


def test_gradients_reach_every_parameter(tiny):
    model = CLIP(get_spec("tiny-s"))
    out = model(torch.randn(2, 3, 64, 64), _tokens(2, 8))
    (out["image_features"] @ out["text_features"].T * out["logit_scale"]).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_registry_and_overrides():
    assert set(STANDARD_MODELS) | set(TINY_MODELS) == set(MODELS)
    spec = get_spec("tiny", vocab_size=8000, image_patch_size=16, text={"layers": 2}, embed_dim=64)
    assert (spec.text.vocab_size, spec.image.patch_size, spec.text.layers, spec.embed_dim) == (8000, 16, 2, 64)
    assert get_spec("tiny") == MODELS["tiny"]  # overrides copy, never mutate the registry
    with pytest.raises(KeyError, match="ViT-B-32"):
        get_spec("ViT-B/32")
    with pytest.raises(ValueError, match="ambiguous"):
        get_spec("tiny", width=64)
    with pytest.raises(ValueError, match="unknown override"):
        get_spec("tiny", depth=3)
    with pytest.raises(ValueError, match="divisible"):
        get_spec("tiny", image_heads=3)


def test_tiny_sizes_increase():
    counts = [sum(p.numel() for p in CLIP(get_spec(n)).parameters()) for n in TINY_MODELS]
    assert counts == sorted(counts)
    assert 1e6 < counts[TINY_MODELS.index("tiny")] < 3e6


def _count(module):
    return sum(p.numel() for p in module.parameters()) / 1e6


@pytest.mark.parametrize("name", STANDARD_MODELS)
def test_param_counts_match_open_clip(name):
    reference = pd.read_csv(REFERENCE / "openclip_model_profile.csv").set_index("model").loc[name]
    with torch.device("meta"):
        model = CLIP(get_spec(name))
    assert _count(model) == pytest.approx(reference["mparams"], rel=0.02)
    assert _count(model.visual) == pytest.approx(reference["image_mparams"], rel=0.02)
    assert _count(model.text) == pytest.approx(reference["text_mparams"], rel=0.02)
    assert model.spec.image.width == reference["image_width"]
    assert model.spec.text.width == reference["text_width"]
    assert model.spec.embed_dim == reference["embed_dim"]


def test_logit_scale_is_clamped_at_100():
    model = CLIP(get_spec("tiny-s"), init_logit_scale=math.log(1000.0))
    out = model(torch.randn(1, 3, 64, 64), _tokens(1, 8))
    assert out["logit_scale"].item() == pytest.approx(100.0, rel=1e-5)
