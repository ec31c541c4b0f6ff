"""Losses: single-process values against direct formulas, and the 2-process gloo gather against the
single-process full-batch loss and gradients (the exact relations are stated in clipscale/train/loss.py)."""

import math

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from clipscale.train.loss import clip_softmax_loss, sigmoid_loss
from gloo_ranks import spawn_ranks

WORLD = 2
LOCAL = 3
DIM = 8


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one intra-op thread (see conftest.one_thread)."""


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(WORLD * LOCAL, DIM, generator=g, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(WORLD * LOCAL, DIM, generator=g, dtype=torch.float64), dim=-1)
    return image, text


def _full_batch(loss_name, image, text, scale, bias, **kwargs):
    """Loss and gradients (image, text, scale, bias) of one process on the whole batch."""
    image = image.clone().requires_grad_(True)
    text = text.clone().requires_grad_(True)
    scale = torch.tensor(scale, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(bias, dtype=torch.float64, requires_grad=True)
    if loss_name == "sigmoid":
        loss = sigmoid_loss(image, text, scale, bias, **kwargs)
    else:
        loss = clip_softmax_loss(image, text, scale, **kwargs)
    loss.backward()
    bias_grad = bias.grad if bias.grad is not None else torch.zeros((), dtype=torch.float64)
    return loss.detach(), image.grad, text.grad, scale.grad, bias_grad


def test_softmax_loss_matches_direct_formula():
    image, text = _batch()
    scale = 7.0
    logits = scale * image @ text.T
    n = logits.shape[0]
    i2t = -sum(logits[i, i] - torch.logsumexp(logits[i], 0) for i in range(n)) / n
    t2i = -sum(logits[i, i] - torch.logsumexp(logits[:, i], 0) for i in range(n)) / n
    loss = clip_softmax_loss(image, text, torch.tensor(scale, dtype=torch.float64))
    assert torch.allclose(loss, (i2t + t2i) / 2)


def test_sigmoid_loss_matches_direct_formula():
    image, text = _batch()
    scale, bias = 10.0, -10.0
    n = image.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            z = scale * float(image[i] @ text[j]) + bias
            label = 1.0 if i == j else -1.0
            total += math.log1p(math.exp(-label * z))
    loss = sigmoid_loss(image, text, torch.tensor(scale, dtype=torch.float64),
                        torch.tensor(bias, dtype=torch.float64))
    assert loss.item() == pytest.approx(total / n, rel=1e-12)


def test_perfect_alignment_gives_small_softmax_loss():
    eye = torch.eye(4, dtype=torch.float64)
    assert clip_softmax_loss(eye, eye, torch.tensor(100.0, dtype=torch.float64)).item() < 1e-10
    # swapped pairs are maximally wrong
    swapped = eye[[1, 0, 3, 2]]
    assert clip_softmax_loss(eye, swapped, torch.tensor(100.0, dtype=torch.float64)).item() > 50


# (loss, kwargs) cases run on 2 gloo processes
CASES = [
    ("softmax", dict(local_loss=True, gather_with_grad=True)),
    ("softmax", dict(local_loss=False, gather_with_grad=False)),
    ("softmax", dict(local_loss=False, gather_with_grad=True)),
    ("softmax", dict(local_loss=True, gather_with_grad=False)),
    ("sigmoid", dict()),
    ("softmax", dict(gather=False)),
    ("sigmoid", dict(gather=False)),
]


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        image, text = _batch()
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        results = []
        for loss_name, kwargs in CASES:
            results.append(_full_batch(loss_name, image[rows], text[rows], 7.0, -3.0, **kwargs))
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gathered(tmp_path_factory):
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("gloo"))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_gathered_loss_on_two_gloo_processes(gathered, case):
    loss_name, kwargs = CASES[case]
    image, text = _batch()
    full_loss, full_image, full_text, full_scale, full_bias = _full_batch(loss_name, image, text, 7.0, -3.0)
    per_rank = [gathered[r][case] for r in range(WORLD)]
    losses = torch.stack([p[0] for p in per_rank])
    image_grad = torch.cat([p[1] for p in per_rank])
    text_grad = torch.cat([p[2] for p in per_rank])
    scale_grads = torch.stack([p[3] for p in per_rank])
    bias_grads = torch.stack([p[4] for p in per_rank])

    if kwargs.get("gather") is False:
        # no gather: each rank's loss and gradients are those of its own shard alone
        for rank in range(WORLD):
            rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
            alone = _full_batch(loss_name, image[rows], text[rows], 7.0, -3.0)
            for got, want in zip(per_rank[rank], alone):
                assert torch.allclose(got, want, atol=1e-12)
        assert not torch.allclose(losses.mean(), full_loss, atol=1e-6)
        return
    # the loss averaged over ranks is the full-batch loss in every mode
    assert torch.allclose(losses.mean(), full_loss, atol=1e-12)
    mode = (loss_name, kwargs.get("local_loss"), kwargs.get("gather_with_grad"))
    if mode == ("softmax", True, False):
        # the biased mode: gradient misses the terms where a rank's features are others' negatives
        assert not torch.allclose(image_grad, full_image, atol=1e-6)
        assert not torch.allclose(image_grad, WORLD * full_image, atol=1e-6)
        return
    if mode == ("softmax", False, False):
        # every rank computes the full loss; local features get exactly the full-batch gradient rows,
        # so data-parallel averaging leaves the towers' gradient divided by WORLD
        assert torch.allclose(losses, full_loss.expand(WORLD), atol=1e-12)
        assert torch.allclose(image_grad, full_image, atol=1e-12)
        assert torch.allclose(text_grad, full_text, atol=1e-12)
    else:
        # gradients of every rank's loss are summed into the owner: WORLD x the full-batch gradient rows,
        # which data-parallel averaging turns back into exactly the full-batch gradient
        assert torch.allclose(image_grad, WORLD * full_image, atol=1e-12)
        assert torch.allclose(text_grad, WORLD * full_text, atol=1e-12)
    # temperature (and SigLIP bias): the rank-average is the full-batch gradient
    assert torch.allclose(scale_grads.mean(), full_scale, atol=1e-12)
    assert torch.allclose(bias_grads.mean(), full_bias, atol=1e-12)
    if loss_name == "sigmoid":
        assert full_bias.abs() > 1e-3  # the bias really is exercised


@pytest.mark.parametrize("loss_name", ["softmax", "sigmoid"])
def test_tiny_clip_learns_to_match_a_batch(loss_name):
    """Model and loss together: a few AdamW steps on 8 fixed pairs drive the loss down and the matching
    pairs to the top of the similarity matrix."""
    from clipscale.models import CLIP, get_spec

    torch.manual_seed(0)
    model = CLIP(get_spec("tiny-s", vocab_size=64, context_length=8), loss=loss_name)
    images = torch.randn(8, 3, 32, 32)
    tokens = torch.randint(1, 64, (8, 8))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(50):
        out = model(images, tokens)
        if loss_name == "sigmoid":
            loss = sigmoid_loss(out["image_features"], out["text_features"], out["logit_scale"], out["logit_bias"])
        else:
            loss = clip_softmax_loss(out["image_features"], out["text_features"], out["logit_scale"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    with torch.no_grad():
        out = model(images, tokens)
        similarity = out["image_features"] @ out["text_features"].T
    assert torch.equal(similarity.argmax(dim=1), torch.arange(8))
